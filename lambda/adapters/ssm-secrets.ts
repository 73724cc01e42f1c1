/**
 * Secrets (webhook secret, App private key, PAT) from SSM SecureString, fetched with decryption once
 * per process and kept in memory only. A failed fetch is not cached, so the next call tries again.
 */
import { ssm } from "./ssm";

const cache = new Map<string, Promise<string>>();

export function readSecret(parameterName: string): Promise<string> {
  let pending = cache.get(parameterName);
  if (!pending) {
    pending = ssm("GetParameter", { Name: parameterName, WithDecryption: true }).then(({ Parameter }) => {
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
