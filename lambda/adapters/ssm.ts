/**
 * The SSM client, for the Lambdas that need more of SSM than reading a secret (label configs, image
 * parameters). Secrets are read without it (secrets.ts), so the webhook does not ship it.
 */
import { SSMClient } from "@aws-sdk/client-ssm";

let client: SSMClient | undefined;

export function ssmClient(): SSMClient {
  client ??= new SSMClient({});
  return client;
}
