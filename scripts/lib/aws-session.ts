/**
 * The operator tools' AWS session from a laptop: which region they act in, and AWS's failures
 * (no credentials, an expired SSO session, no region, a stack in another region) said as what to do.
 * The tools reuse the Lambdas' adapters, which read AWS_REGION and the SDK's credential chain
 * (environment, profiles, SSO); so the region is resolved here and put in AWS_REGION.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

type Env = Record<string, string | undefined>;

/** The profile the SDK's chain uses: AWS_PROFILE, else `default`. */
export const profileOf = (env: Env = process.env) => env.AWS_PROFILE || "default";

/**
 * The profile's settings in a shared file, or undefined when the file has no such profile: the
 * config file names sections `[profile NAME]` (and `[default]`), the credentials file `[NAME]`.
 */
function profileSettings(file: "config" | "credentials", env: Env): Record<string, string> | undefined {
  const override = file === "config" ? env.AWS_CONFIG_FILE : env.AWS_SHARED_CREDENTIALS_FILE;
  let text: string;
  try {
    text = readFileSync(override || join(env.HOME || homedir(), ".aws", file), "utf8");
  } catch {
    return undefined;
  }
  const profile = profileOf(env);
  const wanted =
    file === "credentials" || profile === "default"
      ? [profile, `profile ${profile}`]
      : [`profile ${profile}`];
  let found: Record<string, string> | undefined;
  let inProfile = false;
  for (const line of text.split(/\r?\n/)) {
    const section = /^\s*\[\s*([^\]]+?)\s*\]/.exec(line);
    if (section) {
      inProfile = wanted.includes(section[1]!);
      if (inProfile) found ??= {};
    }
    const setting = inProfile && /^\s*([\w-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (setting && found) found[setting[1]!] = setting[2]!;
  }
  return found;
}

/** The `region` of the profile in the shared config file (AWS_CONFIG_FILE or ~/.aws/config). */
export const profileRegion = (env: Env = process.env): string | undefined =>
  profileSettings("config", env)?.region || undefined;

export class AwsSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AwsSetupError";
  }
}

export function noRegionMessage(env: Env = process.env): string {
  const profile = profileOf(env);
  return (
    "no AWS region: pass --region REGION (the stack's region), or export AWS_REGION=REGION, or set " +
    `the profile's: aws configure set region REGION${profile === "default" ? "" : ` --profile ${profile}`}`
  );
}

/**
 * The region the tool acts in, first found of: the --region flag, AWS_REGION / AWS_DEFAULT_REGION,
 * the stack's `aws:region`, the profile's region. Sets AWS_REGION to it (the adapters read it there).
 */
export function useRegion(sources: { flag?: string; stackRegion?: string }, env: Env = process.env): string {
  const region =
    sources.flag || env.AWS_REGION || env.AWS_DEFAULT_REGION || sources.stackRegion || profileRegion(env);
  if (!region) throw new AwsSetupError(noRegionMessage(env));
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
    throw new AwsSetupError(
      `"${region}" is not an AWS region name (e.g. eu-west-1): check --region / AWS_REGION`,
    );
  env.AWS_REGION = region;
  return region;
}

const NETWORK_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT"]);

/** The SDK's credential chain found nothing usable: why, and what to run. */
function noCredentialsMessage(error: Error, env: Env): string {
  const profile = profileOf(env);
  const named = env.AWS_PROFILE ? ` (profile ${profile})` : "";
  if (/sso/i.test(error.message))
    return `the AWS SSO session${named} has expired or never started: aws sso login --profile ${profile}`;
  if (env.AWS_PROFILE && !profileSettings("config", env) && !profileSettings("credentials", env))
    return `there is no AWS profile "${profile}" (AWS_PROFILE): list them with \`aws configure list-profiles\`, or create it with \`aws configure --profile ${profile}\``;
  return [
    `no AWS credentials found${named}. One of:`,
    "  aws configure                                       (access keys, saved to ~/.aws/credentials)",
    "  aws sso login --profile X && export AWS_PROFILE=X   (IAM Identity Center / SSO)",
    "  export AWS_PROFILE=X                                (a profile in ~/.aws/config)",
  ].join("\n");
}

const EXPIRED = /^(ExpiredToken|ExpiredTokenException|RequestExpired)$/;
const NOT_ACCEPTED =
  /^(UnrecognizedClientException|InvalidClientTokenId|InvalidSignatureException|SignatureDoesNotMatch)$/;

function credentialsMessage(error: Error, env: Env): string | undefined {
  if (/^(CredentialsProviderError|TokenProviderError)$/.test(error.name))
    return noCredentialsMessage(error, env);
  const named = env.AWS_PROFILE ? ` (profile ${env.AWS_PROFILE})` : "";
  if (EXPIRED.test(error.name))
    return `the AWS credentials${named} have expired: refresh them (aws sso login --profile ${profileOf(env)}, or new session keys)`;
  if (NOT_ACCEPTED.test(error.name))
    return `AWS does not accept these credentials${named} (${error.name}): check them with \`aws sts get-caller-identity\``;
  return undefined;
}

/**
 * What to do about an AWS failure, in plain words; undefined for one that is not about the session
 * (the caller then shows the error as it is). `what` names the resource asked for, for a not-found.
 */
export function explainAwsError(error: unknown, env: Env = process.env, what?: string): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error instanceof AwsSetupError) return error.message;
  const credentials = credentialsMessage(error, env);
  if (credentials) return credentials;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (/setting AWS_REGION/.test(error.message) || /region is missing/i.test(error.message))
    return noRegionMessage(env);
  if (/^(AccessDenied|AccessDeniedException|UnauthorizedOperation)$/.test(error.name))
    return `AWS refused${env.AWS_PROFILE ? ` profile ${env.AWS_PROFILE}` : ""}: ${error.message}. The tools need read access to the stack's table, queues, parameters, images and alarms.`;
  if (/^(ResourceNotFoundException|QueueDoesNotExist)$/.test(error.name))
    return `${what ?? "the stack's resource"} is not in ${region ?? "this region"} (${error.name}): is the stack in another region? pass --region REGION`;
  const code = (error as { code?: string }).code ?? (error.cause as { code?: string } | undefined)?.code;
  if (code && NETWORK_CODES.has(code))
    return `cannot reach AWS in ${region ?? "the region"} (${code}: ${error.message}): check --region, the network and any proxy`;
  return undefined;
}
