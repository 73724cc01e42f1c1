/**
 * The EC2 SDK client, one per process, the base of the EC2 adapters (ec2.ts: instances,
 * ec2-images.ts: images and snapshots). Its endpoint follows AWS_ENDPOINT_URL /
 * AWS_ENDPOINT_URL_EC2 (the sandbox in tests).
 */
import { EC2Client } from "@aws-sdk/client-ec2";

let client: EC2Client | undefined;

export function ec2Client(): EC2Client {
  client ??= new EC2Client({});
  return client;
}

/** An error of the EC2 API itself (the whole call failed), with its code. */
export function ec2ErrorCode(error: unknown): string | undefined {
  if (error && typeof error === "object") {
    const e = error as { name?: string; Code?: string; code?: string };
    return e.Code ?? e.code ?? e.name;
  }
  return undefined;
}
