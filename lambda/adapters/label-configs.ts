/**
 * Label configs at run time: one JSON SSM parameter per config under `settings().labelConfigPath`,
 * read with GetParametersByPath and kept for a short time, so a burst of launcher invocations makes
 * one SSM call a minute rather than one per batch, and a `pulumi up` is live within that minute.
 */
// zod/mini: the same schemas as "zod" without its method chains and locales (~20 KiB instead of ~445
// KiB in the bundle: the launcher's and reconciler's start).
import * as z from "zod/mini";
import type { LabelConfig } from "../shared/label-config";
import { settings } from "../shared/settings";
import { logger } from "../shared/telemetry";
import { parameterValue, ssm } from "./ssm";

export const LABEL_CONFIG_CACHE_MS = 60_000;

/** The runtime shape, with the documented defaults for what the program may omit. */
const labelConfigSchema = z.object({
  name: z.string().check(z.minLength(1)),
  labels: z.array(z.string()),
  arch: z.enum(["x64", "arm64"]),
  instanceTypes: z.array(z.string()).check(z.minLength(1)),
  launchTemplateId: z.string().check(z.minLength(1)),
  launchTemplateVersion: z.optional(z.int().check(z.minimum(1))),
  spotPolicy: z._default(z.enum(["spotOnly", "spotPreferred", "onDemandOnly"]), "spotPreferred"),
  spotFailuresBeforeOnDemand: z._default(z.int().check(z.minimum(0)), 1),
  allocationStrategy: z._default(
    z.enum(["capacity-optimized", "price-capacity-optimized", "lowest-price"]),
    "capacity-optimized",
  ),
  maxRunners: z.int().check(z.minimum(0)),
  retryOnInterruption: z._default(z.boolean(), true),
  runnerGroupId: z._default(z.int().check(z.minimum(1)), 1),
  diskSizeGb: z.optional(z.int().check(z.minimum(1))),
  image: z.optional(
    z.union([z.object({ amiId: z.string() }), z.object({ parameter: z.string().check(z.minLength(1)) })]),
  ),
  pool: z.optional(
    z.object({
      size: z.int().check(z.minimum(0)),
      schedule: z.optional(
        z.object({
          timeZone: z.string(),
          days: z.array(z.enum(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])),
          from: z.string().check(z.regex(/^([01]\d|2[0-3]):[0-5]\d$/)),
          to: z.string().check(z.regex(/^([01]\d|2[0-4]):[0-5]\d$/)),
          size: z.int().check(z.minimum(0)),
        }),
      ),
    }),
  ),
}) satisfies z.ZodMiniType<LabelConfig, unknown>;

/** One published label config's value: the config, or why it is none (not JSON, or the schema's problem). */
export function parseLabelConfig(
  value: string | undefined,
): { ok: true; config: LabelConfig } | { ok: false; notJson: boolean; problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(value ?? "");
  } catch {
    return { ok: false, notJson: true, problem: "not JSON" };
  }
  const parsed = labelConfigSchema.safeParse(raw);
  return parsed.success
    ? { ok: true, config: parsed.data }
    : { ok: false, notJson: false, problem: z.prettifyError(parsed.error) };
}

let cached: { path: string; at: number; configs: Promise<Map<string, LabelConfig>> } | undefined;

async function fetchConfigs(path: string): Promise<Map<string, LabelConfig>> {
  const configs = new Map<string, LabelConfig>();
  let nextToken: string | undefined;
  do {
    const page = await ssm("GetParametersByPath", {
      Path: path,
      Recursive: true,
      NextToken: nextToken,
      MaxResults: 10,
    });
    for (const parameter of page.Parameters ?? []) {
      // One broken parameter must not stop the launches of every other config: skip it, loudly.
      const parsed = parseLabelConfig(parameter.Value);
      if (parsed.ok) configs.set(parsed.config.name, parsed.config);
      else if (parsed.notJson)
        logger.error("label config parameter is not JSON", { parameter: parameter.Name });
      else
        logger.error("label config parameter is invalid", {
          parameter: parameter.Name,
          problem: parsed.problem,
        });
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return configs;
}

/** Every label config by name (cached for LABEL_CONFIG_CACHE_MS; a failed read is not cached). */
export function loadLabelConfigs(now = Date.now()): Promise<Map<string, LabelConfig>> {
  const path = settings().labelConfigPath;
  if (!cached || cached.path !== path || now - cached.at > LABEL_CONFIG_CACHE_MS) {
    const configs = fetchConfigs(path);
    const entry = { path, at: now, configs };
    configs.catch(() => {
      if (cached === entry) cached = undefined;
    });
    cached = entry;
  }
  return cached.configs;
}

/** Forgets the cached configs (tests; after a deploy). */
export function forgetLabelConfigs(): void {
  cached = undefined;
}

/**
 * Each config's current AMI: its own `amiId`, or the value of the SSM parameter the image pipeline
 * writes (each parameter read once). A parameter that cannot be read goes to `unreadable`: its config
 * is left out when that returns (the reconciler: no rotation by AMI this run), and the error
 * propagates when it throws (the operator tools, for anything but a parameter not written yet).
 */
export async function currentAmisOf(
  configs: LabelConfig[],
  unreadable: (config: LabelConfig, error: unknown) => void,
): Promise<Map<string, string>> {
  const reads = new Map<string, Promise<string | undefined>>();
  const read = (parameter: string) => {
    if (!reads.has(parameter)) reads.set(parameter, parameterValue(parameter));
    return reads.get(parameter)!;
  };
  const amis = await Promise.all(
    configs.map(async (config): Promise<[string, string | undefined]> => {
      const image = config.image;
      if (!image) return [config.name, undefined];
      if ("amiId" in image) return [config.name, image.amiId];
      const ami = await read(image.parameter).catch((error: unknown) => {
        unreadable(config, error);
        return undefined;
      });
      return [config.name, ami];
    }),
  );
  return new Map(amis.flatMap(([name, ami]) => (ami ? [[name, ami] as const] : [])));
}
