/**
 * Secrets (webhook secret, App private key, PAT) from SSM SecureString, fetched with decryption once
 * per process and kept in memory only. A failed fetch is not cached, so the next call tries again.
 * The fetch does not use the SSM client (see ssm-parameter.ts): the webhook needs nothing else of SSM.
 */
import { getParameterValue } from "./ssm-parameter";

const cache = new Map<string, Promise<string>>();

export function readSecret(parameterName: string): Promise<string> {
  let pending = cache.get(parameterName);
  if (!pending) {
    pending = getParameterValue(parameterName).then((value) => {
      if (!value) throw new Error(`SSM parameter ${parameterName} has no value`);
      return value;
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
