/**
 * SSM GetParameter (with decryption) without `@aws-sdk/client-ssm`: that client ships the schema and
 * error class of every SSM operation (~77 KiB minified), more than a fifth of the webhook's bundle,
 * for the one call the webhook makes (README "Performance": bundle and cold-start budget). The
 * request is what the SDK sends: the awsJson1_1 protocol, signed with the SDK's own SigV4 signer and
 * the environment's credentials, at the SDK's endpoint (AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL, else
 * the regional one); throttling, 5xx and network errors are retried like the SDK's standard mode
 * (3 attempts, jittered exponential backoff).
 */
import { createHash, createHmac } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { fromEnv } from "@aws-sdk/credential-provider-env";
import { SignatureV4 } from "@smithy/signature-v4";
import { settings } from "../shared/settings";

const ATTEMPTS = 3;
const TIMEOUT_MS = 5_000;
const THROTTLING = new Set(["ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"]);

type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: Data) =>
  typeof data === "string"
    ? Buffer.from(data)
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);

/** SHA-256 / HMAC-SHA-256 for the signer, from node:crypto. */
class Sha256 {
  private hash;
  constructor(private readonly secret?: Data) {
    this.hash = this.fresh();
  }
  private fresh() {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(this.secret));
  }
  update(data: Data): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

/** An SSM error as the SDK names it (`name` = the error code). */
export class SsmError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = code;
  }
}

let signer: SignatureV4 | undefined;

function endpoint(): URL {
  const s = settings();
  const region = s.awsRegion;
  return new URL(
    s.ssmEndpointUrl ?? `https://ssm.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`,
  );
}

/** The decrypted value of a parameter (SecureString or not); throws SsmError or a network error. */
export async function getParameterValue(name: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await getOnce(name);
    } catch (error) {
      const status = error instanceof SsmError ? error.status : undefined;
      const retryable =
        !(error instanceof SsmError) || (status ?? 0) >= 500 || status === 429 || THROTTLING.has(error.code);
      if (!retryable || attempt >= ATTEMPTS) throw error;
      const delay = Math.random() * Math.min(20_000, 100 * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function getOnce(name: string): Promise<string> {
  const url = endpoint();
  signer ??= new SignatureV4({
    service: "ssm",
    region: settings().awsRegion,
    credentials: fromEnv(),
    sha256: Sha256,
  });
  const body = JSON.stringify({ Name: name, WithDecryption: true });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query: {},
    headers: {
      host: url.host,
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "AmazonSSM.GetParameter",
      "content-length": String(Buffer.byteLength(body)),
    },
    body,
  });
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    const req = send(
      url,
      { method: "POST", headers: signed.headers as Record<string, string>, timeout: TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`SSM GetParameter timed out after ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end(body);
  });
  let parsed: { Parameter?: { Value?: string }; __type?: string; message?: string; Message?: string } = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: an HTML error page from something in between
  }
  if (status !== 200) {
    const code = (parsed.__type ?? `HTTP${status}`).split("#").pop()!;
    throw new SsmError(code, parsed.message ?? parsed.Message ?? `SSM answered ${status}`, status);
  }
  const value = parsed.Parameter?.Value;
  if (value === undefined) throw new SsmError("InvalidResponse", "SSM GetParameter answered without a value");
  return value;
}
