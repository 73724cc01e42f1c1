/**
 * Secrets (webhook secret, App private key, PAT) from SSM SecureString, fetched with decryption once
 * per process and kept in memory only. A failed fetch is not cached, so the next call tries again.
 */
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";

let client: SSMClient | undefined;
const cache = new Map<string, Promise<string>>();

export function ssmClient(): SSMClient {
  client ??= new SSMClient({});
  return client;
}

export function readSecret(parameterName: string): Promise<string> {
  let pending = cache.get(parameterName);
  if (!pending) {
    pending = ssmClient()
      .send(new GetParameterCommand({ Name: parameterName, WithDecryption: true }))
      .then(({ Parameter }) => {
        if (!Parameter?.Value) throw new Error(`SSM parameter ${parameterName} has no value`);
        return Parameter.Value;
      });
    pending.catch(() => cache.delete(parameterName));
    cache.set(parameterName, pending);
  }
  return pending;
}

/** Forgets cached secrets (tests; a rotated secret after a failed verification). */
export function forgetSecrets(): void {
  cache.clear();
}
