/**
 * Value checks the schema runs that a pattern cannot express: GitHub's web URL and EC2 instance
 * types. Each returns what is wrong, in plain words, or undefined.
 */
// The file itself, not the directory: scripts import this module as ESM, which needs the full path.
import { InstanceType } from "@pulumi/aws/types/enums/ec2/index.js";
import { closestName } from "../../lambda/core/spelling";

/**
 * Every EC2 instance type, from the `InstanceType` enum @pulumi/aws generates from AWS's API model:
 * updating @pulumi/aws brings new types (a type newer than it is refused until then).
 */
const EC2_INSTANCE_TYPES: readonly string[] = Object.values(InstanceType);
const knownInstanceTypes = new Set(EC2_INSTANCE_TYPES);

export function instanceTypeProblem(type: string): string | undefined {
  if (knownInstanceTypes.has(type)) return undefined;
  const suggestion = closestName(type.toLowerCase(), EC2_INSTANCE_TYPES, 3);
  return suggestion
    ? `${type} is not an EC2 instance type; did you mean ${suggestion}?`
    : `${type} is not an EC2 instance type; expected one like "m7i.large" (family.size)`;
}

/**
 * Whether an instance type is Graviton (arm64): `a1`, or a family whose attribute letters after the
 * generation digit contain `g` (m7g, c7gn, t4g, r8gd, g5g, x2gd, im4gn, is4gen; not g5 or g4dn).
 */
export function isArm64InstanceType(instanceType: string): boolean {
  const family = instanceType.split(".")[0] ?? "";
  if (family === "a1") return true;
  const match = /^[a-z]+\d+([a-z-]*)$/.exec(family);
  return match ? (match[1] ?? "").split("-")[0]!.includes("g") : false;
}

const URL_EXAMPLE = '"https://github.example.com"';

/**
 * GitHub's web URL: https, a host and nothing else (the API URL is derived from it, and what a URL
 * can carry besides would be dropped or, for credentials, leaked into the stack file).
 */
export function webUrlProblem(text: string): string | undefined {
  const url = URL.canParse(text) && /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? new URL(text) : undefined;
  if (!url) {
    const asHost = /^[\w.-]+(:\d+)?\/?$/.test(text) ? `"https://${text.replace(/\/$/, "")}"` : URL_EXAMPLE;
    return `expected a URL starting with https://, e.g. ${asHost}`;
  }
  if (url.protocol !== "https:") return `expected a URL starting with https:// (not ${url.protocol}//)`;
  if (url.username || url.password)
    return "expected a URL without credentials (user:password@): the App's key or the token authenticates";
  if (url.search || url.hash || /[?#]/.test(text))
    return `expected the web URL without a query (?…) or fragment (#…), e.g. ${URL_EXAMPLE}`;
  if (url.pathname.replace(/\/+$/, "") !== "")
    return `expected the web URL without a path, e.g. ${URL_EXAMPLE} (not …/api/v3)`;
  return undefined;
}
