/**
 * The runner instance's side of the fleet, as data for the Pulumi program: the user data every launch
 * template carries (`renderBootstrap`), and the Image Builder components the runner AMI is built from
 * (`imageComponents`, `recipeParameters`, `parentImageArn`). Pure functions (they read files of this
 * repository and nothing else), so the tests exercise exactly what gets deployed.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { MINIMUM_RUNNER_VERSION } from "./runner-minimum-version";

const REPO_ROOT = path.resolve(__dirname, "..", "..");

export const BOOTSTRAP_TEMPLATE = "runner/bootstrap.sh";

export interface BootstrapParams {
  /** The stack's region: where the hand-off table is (and the instance runs). */
  region: string;
  /** Name of the hand-off table (HANDOFF_TABLE in lambda/shared/tables.ts). */
  handoffTable: string;
  /** Unique id (`AROA…`) of the runner instance role: the first half of the hand-off key. */
  runnerRoleId: string;
  /** No job started this long after the runner started: stop and terminate. Default 600. */
  idleTimeoutSeconds?: number;
  /** Terminate this long after boot, job or not. Default 21600 (6 h). */
  maxRuntimeSeconds?: number;
  /** How long to wait for the launcher to write the JIT config. Default 120. */
  handoffWaitSeconds?: number;
  /** A pool member's first boot reads its runner, image and tool files for at most this long. Default 600. */
  warmupSeconds?: number;
  /**
   * A warmed pool member waits this long for the reconciler's StopInstances, then shuts down (and so
   * terminates). Default 900.
   */
  stopWaitSeconds?: number;
  /** Default `runner` (created by the image's runner-fleet-host component). */
  runnerUser?: string;
  /** Default `/opt/actions-runner` (the runner-fleet-actions-runner component). */
  runnerDir?: string;
  /** Default `https://dynamodb.<region>.amazonaws.com` (`.com.cn` in China regions). */
  dynamodbEndpoint?: string;
}

export const BOOTSTRAP_DEFAULTS = {
  idleTimeoutSeconds: 600,
  maxRuntimeSeconds: 21_600,
  handoffWaitSeconds: 120,
  warmupSeconds: 600,
  stopWaitSeconds: 900,
  runnerUser: "runner",
  runnerDir: "/opt/actions-runner",
} as const;

/**
 * Attributes of its own hand-off item that an instance names in its requests (the key, the
 * `jitConfig` or pool member's `warmup` marker it reads and removes, what it reports), for an IAM
 * `dynamodb:Attributes` condition next to `dynamodb:LeadingKeys`. The instance needs
 * `dynamodb:UpdateItem` only: it takes the config or marker with one conditional UpdateItem that
 * returns the old value (ReturnValues UPDATED_OLD), so no GetItem.
 */
export const HANDOFF_INSTANCE_ATTRIBUTES = [
  "handoffKey",
  "jitConfig",
  "warmup",
  "fetchedAt",
  "expiresAt",
  "runnerStartedAt",
  "jobStartedAt",
  "jobFinishedAt",
  "interruptedAt",
  "runnerExitedAt",
  "runnerExitCode",
  "stopReason",
  "warmedAt",
] as const;

/** EC2 user data is limited to 16 KB before base64. */
export const USER_DATA_LIMIT_BYTES = 16_384;

const PATTERNS = {
  region: /^[a-z]{2}(-[a-z]+)+-\d+$/,
  handoffTable: /^[A-Za-z0-9_.-]{3,255}$/,
  runnerRoleId: /^[A-Z0-9]{16,128}$/,
  runnerUser: /^[a-z_][a-z0-9_-]{0,31}$/,
  runnerDir: /^\/[A-Za-z0-9._/-]*$/,
  dynamodbEndpoint: /^https?:\/\/[A-Za-z0-9.-]+(:\d+)?$/,
};

function checked(name: keyof typeof PATTERNS, value: string): string {
  if (!PATTERNS[name].test(value))
    throw new Error(`renderBootstrap: invalid ${name}: ${JSON.stringify(value)}`);
  return value;
}

function seconds(name: string, value: number): string {
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`renderBootstrap: ${name} must be a positive integer`);
  return String(value);
}

export function dynamodbEndpointFor(region: string): string {
  return `https://dynamodb.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
}

/**
 * The template without its comment lines (a `# shellcheck` directive stays), for EC2's 16 KB: the
 * comments are for the repository's readers. The template must hold no heredoc or multi-line string
 * whose lines could start with `#`; the tests run and shellcheck the rendered script.
 */
function withoutComments(template: string): string {
  const [shebang = "", ...lines] = template.split("\n");
  const code = lines.filter((line) => !/^\s*#(?! shellcheck )/.test(line) && line.trim() !== "");
  return [shebang, `# runner-fleet: ${BOOTSTRAP_TEMPLATE} rendered without its comments`, ...code].join("\n");
}

/**
 * The user data of a runner instance: runner/bootstrap.sh with this deployment's values, less its
 * comments. Nothing in it is secret; every value is checked against a strict pattern, so none can
 * break out of its quotes.
 */
export function renderBootstrap(params: BootstrapParams): string {
  const p = { ...BOOTSTRAP_DEFAULTS, ...params };
  const values: Record<string, string> = {
    REGION: checked("region", p.region),
    HANDOFF_TABLE: checked("handoffTable", p.handoffTable),
    RUNNER_ROLE_ID: checked("runnerRoleId", p.runnerRoleId),
    RUNNER_USER: checked("runnerUser", p.runnerUser),
    RUNNER_DIR: checked("runnerDir", p.runnerDir),
    IDLE_TIMEOUT_SECONDS: seconds("idleTimeoutSeconds", p.idleTimeoutSeconds),
    MAX_RUNTIME_SECONDS: seconds("maxRuntimeSeconds", p.maxRuntimeSeconds),
    HANDOFF_WAIT_SECONDS: seconds("handoffWaitSeconds", p.handoffWaitSeconds),
    WARMUP_SECONDS: seconds("warmupSeconds", p.warmupSeconds),
    STOP_WAIT_SECONDS: seconds("stopWaitSeconds", p.stopWaitSeconds),
    DYNAMODB_ENDPOINT: checked("dynamodbEndpoint", p.dynamodbEndpoint ?? dynamodbEndpointFor(p.region)),
  };
  const template = withoutComments(readFileSync(path.join(REPO_ROOT, BOOTSTRAP_TEMPLATE), "utf8"));
  const script = template.replace(/'__RF_([A-Z_]+)__'/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`renderBootstrap: the template names an unknown value ${name}`);
    return `'${value}'`;
  });
  if (Buffer.byteLength(script) > USER_DATA_LIMIT_BYTES) {
    throw new Error(`renderBootstrap: user data is ${Buffer.byteLength(script)} bytes, over EC2's 16 KB`);
  }
  return script;
}

// --- the runner image --------------------------------------------------------------------------

export type ImageArch = "x86_64" | "arm64";
export type ImageComponentKey = "host" | "actions-runner" | "prepull-images";

export interface ImageComponent {
  key: ImageComponentKey;
  /** Repository path of the AWSTOE document. */
  file: string;
  /** The document's own name and description (use them for aws.imagebuilder.Component). */
  name: string;
  description: string;
  platform: "Linux";
  supportedOsVersions: string[];
  architectures: ImageArch[];
  /** The document as Image Builder must get it (scripts inlined): aws.imagebuilder.Component `data`. */
  data: string;
  /**
   * Semantic version derived from `data`: Image Builder components are immutable per version, so a
   * changed document needs a new one (a replacement would otherwise collide with the old version).
   */
  version: string;
}

/** In the order a recipe must apply them. */
const COMPONENT_FILES: Record<ImageComponentKey, string> = {
  host: "image/components/runner-host.yml",
  "actions-runner": "image/components/actions-runner.yml",
  "prepull-images": "image/components/prepull-images.yml",
};

/**
 * Replaces each `# @include <repo path>` line of a component document with that file, indented
 * like the line, so the bash that matters lives in a script the tests can run on their own.
 */
export function inlineIncludes(document: string): string {
  return document.replace(/^([ \t]*)# @include (\S+)[ \t]*$/gm, (_, indent: string, file: string) =>
    readFileSync(path.join(REPO_ROOT, file), "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => (line.length > 0 ? indent + line : line))
      .join("\n"),
  );
}

function topLevelString(document: string, key: string): string {
  const match = new RegExp(`^${key}: *(>-?)?\\n?((?: {2}.*\\n)+|.*)`, "m").exec(document);
  if (!match?.[2]) throw new Error(`component document has no ${key}`);
  return match[2]
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .join(" ");
}

export function imageComponents(): ImageComponent[] {
  return (Object.entries(COMPONENT_FILES) as [ImageComponentKey, string][]).map(([key, file]) => {
    const data = inlineIncludes(readFileSync(path.join(REPO_ROOT, file), "utf8"));
    const hash = createHash("sha256").update(data).digest("hex");
    return {
      key,
      file,
      name: topLevelString(data, "name"),
      description: topLevelString(data, "description"),
      platform: "Linux",
      // Image Builder matches this prefix against the parent image's OS when it creates a recipe.
      supportedOsVersions: ["Ubuntu 24"],
      architectures: ["x86_64", "arm64"],
      data,
      version: `1.0.${Number.parseInt(hash.slice(0, 7), 16)}`,
    };
  });
}

export interface RunnerImageOptions {
  /** x.y.z, or `latest` (default): the latest release when the image is built. */
  runnerVersion?: string;
  /** Pinned SHA-256 per architecture (only with a pinned runnerVersion); must match GitHub's too. */
  runnerSha256?: Partial<Record<ImageArch, string>>;
  /** Default 2.329.0, the oldest version GitHub lets register. */
  minimumRunnerVersion?: string;
  /** Container images to pre-pull into the AMI. */
  prePullImages?: string[];
  /** Default true: the runner user gets passwordless sudo. */
  grantSudo?: boolean;
}

const SEMVER = /^\d+\.\d+\.\d+$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;
const IMAGE_REF = /^[a-z0-9][a-z0-9._/:@-]*$/;

/**
 * The parameters of one component in one architecture's recipe
 * (aws.imagebuilder.ImageRecipe `components[].parameters`); undefined when the defaults do.
 */
export function recipeParameters(
  key: ImageComponentKey,
  arch: ImageArch,
  options: RunnerImageOptions = {},
): { name: string; value: string }[] | undefined {
  const parameters: { name: string; value: string }[] = [];
  if (key === "host" && options.grantSudo === false) parameters.push({ name: "GrantSudo", value: "false" });
  if (key === "actions-runner") {
    const version = options.runnerVersion ?? "latest";
    if (version !== "latest" && !SEMVER.test(version))
      throw new Error(`runnerVersion must be x.y.z: ${version}`);
    const minimum = options.minimumRunnerVersion ?? MINIMUM_RUNNER_VERSION;
    if (!SEMVER.test(minimum)) throw new Error(`minimumRunnerVersion must be x.y.z: ${minimum}`);
    const sha = options.runnerSha256?.[arch];
    if (sha !== undefined && (!SHA256.test(sha) || version === "latest")) {
      throw new Error(`runnerSha256.${arch} needs a pinned runnerVersion and 64 hex digits`);
    }
    parameters.push(
      { name: "RunnerVersion", value: version },
      { name: "MinimumRunnerVersion", value: minimum },
    );
    if (sha) parameters.push({ name: "RunnerSha256", value: sha.toLowerCase() });
  }
  if (key === "prepull-images" && options.prePullImages?.length) {
    const bad = options.prePullImages.filter((image) => !IMAGE_REF.test(image));
    if (bad.length > 0) throw new Error(`prePullImages: invalid image references ${bad.join(", ")}`);
    parameters.push({ name: "Images", value: options.prePullImages.join(" ") });
  }
  return parameters.length > 0 ? parameters : undefined;
}

/**
 * The AWS-managed Ubuntu 24.04 LTS parent image (always its latest version) for a recipe: the names
 * AWS CDK's AmazonManagedImage.ubuntuServer2404 uses. 24.04 over 22.04: standard support until 2029
 * instead of April 2027, and a curl that signs the x-amz-* headers the bootstrap sends to DynamoDB.
 */
export function parentImageArn(region: string, arch: ImageArch): string {
  const partition = region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";
  const name = arch === "arm64" ? "ubuntu-server-24-lts-arm64" : "ubuntu-server-24-lts-x86";
  return `arn:${partition}:imagebuilder:${region}:aws:image/${name}/x.x.x`;
}
