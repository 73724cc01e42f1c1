/**
 * The secrets scan of the adversarial suite (test/adversarial-secrets.test.ts,
 * test/infra/program-secrets-scan.test.ts): looks for known secret values in what leaves the fleet's
 * trust boundary (log lines, queue messages, tags, user data, environments), whole or in part, and in
 * the forms a leak takes on the way (JSON-escaped, base64, URL-encoded).
 */

export interface KnownSecret {
  /** What it is, for the report: "App private key", "JIT config of runner 1001". */
  name: string;
  value: string;
}

export interface ScannedText {
  /** Where the text was found: "log line 12", "SQS message 3", "tags of i-0abc…". */
  where: string;
  text: string;
}

/** Long enough that a fragment this size of a random secret appears nowhere by chance. */
const FRAGMENT_CHARS = 24;

/**
 * What to look for of a secret: the whole value, in its JSON-escaped, base64 and URL-encoded forms,
 * and each of its non-overlapping FRAGMENT_CHARS-long pieces (a truncated or wrapped leak), taken
 * from the value without PEM armour or line breaks.
 */
export function secretFragments(value: string): string[] {
  const body = value.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
  const pieces: string[] = [];
  for (let at = 0; at + FRAGMENT_CHARS <= body.length; at += FRAGMENT_CHARS)
    pieces.push(body.slice(at, at + FRAGMENT_CHARS));
  const forms = [
    value,
    JSON.stringify(value).slice(1, -1),
    Buffer.from(value)
      .toString("base64")
      .slice(0, FRAGMENT_CHARS * 2),
    encodeURIComponent(value),
  ];
  return [
    ...new Set([...forms, ...pieces].filter((f) => f.length >= Math.min(FRAGMENT_CHARS, value.length))),
  ];
}

/** Each secret found in a text, as "<secret> in <where>". */
export function findLeaks(secrets: KnownSecret[], texts: ScannedText[]): string[] {
  const leaks: string[] = [];
  for (const secret of secrets) {
    const fragments = secretFragments(secret.value);
    for (const { where, text } of texts)
      if (fragments.some((f) => text.includes(f))) leaks.push(`${secret.name} in ${where}`);
  }
  return leaks;
}
