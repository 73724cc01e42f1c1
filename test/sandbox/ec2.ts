/**
 * EC2 over its Query protocol (form-encoded POST `Action=…&Version=2016-11-15`, XML answers in the
 * EC2 namespace), as @aws-sdk/client-ec2 serializes it (`LaunchTemplateConfigs.1.Overrides.2.InstanceType`,
 * `TagSpecification.1.Tag.1.Key`, `Filter.1.Value.1`). Covers what the fleet does: CreateFleet
 * (instant) with per-override capacity errors in `errorSet` and ClientToken idempotency, RunInstances,
 * DescribeInstances with filters and pagination, Stop/Start (and hibernation) and TerminateInstances
 * with their state transitions on the sandbox clock (ec2-boot.ts: how long each takes, and when the
 * OS reaches the user data), tags, and the AMI/snapshot calls the clean-destroy logic makes.
 */
import { createHash, randomUUID } from "node:crypto";
import { type BootModel, INSTANT_BOOT, sampleMs } from "./ec2-boot";
import type { FaultError, Faults } from "./faults";
import {
  ACCOUNT_ID,
  ApiError,
  type Clock,
  type LocalServer,
  listen,
  randomHex,
  readBody,
  send,
} from "./http";

const NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/";

export type InstanceStateName =
  | "pending"
  | "running"
  | "shutting-down"
  | "terminated"
  | "stopping"
  | "stopped";
export type Lifecycle = "spot" | "on-demand";

const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** Errors CreateFleet (instant) reports per launch template override in `errorSet`, not as HTTP errors. */
const FLEET_INLINE_CODES: ReadonlySet<string> = new Set([
  "InsufficientInstanceCapacity",
  "InsufficientCapacity",
  "UnfulfillableCapacity",
  "MaxSpotInstanceCountExceeded",
  "SpotMaxPriceTooLow",
  "InsufficientFreeAddressesInSubnet",
  "InsufficientHostCapacity",
  "VcpuLimitExceeded",
  "InstanceLimitExceeded",
  "Unsupported",
]);

const STATUS: Record<string, number> = {
  RequestLimitExceeded: 503,
  InsufficientInstanceCapacity: 500,
  InsufficientCapacity: 500,
  InternalError: 500,
  InternalFailure: 500,
  ServiceUnavailable: 503,
  Unavailable: 503,
  DryRunOperation: 412,
};
const THROTTLE: FaultError = {
  code: "RequestLimitExceeded",
  message: "Request limit exceeded.",
  status: 503,
};

/** Terminated instances stay visible in DescribeInstances for about an hour, as on AWS. */
const TERMINATED_VISIBLE_MS = 3_600_000;

/** One boot of an instance: its launch, or a start of it once stopped (or hibernated). */
export interface InstanceBoot {
  kind: "launch" | "start" | "resume";
  /** Sandbox clock when EC2 accepted the request (the instance turned `pending`). */
  requestedAt: number;
  runningAt: number;
  /** Launch and start: when the OS runs the user data (cloud-init's scripts-user); resume: when the processes run again. */
  readyAt: number;
}

export interface SandboxInstance {
  instanceId: string;
  imageId: string;
  instanceType: string;
  subnetId?: string;
  vpcId: string;
  availabilityZone: string;
  privateIpAddress: string;
  state: InstanceStateName;
  stateReason?: string;
  market: Lifecycle;
  launchTime: number;
  tags: Record<string, string>;
  reservationId: string;
  launchTemplate?: { id?: string; name?: string; version?: string };
  clientToken?: string;
  spotInstanceRequestId?: string;
  /** Sandbox clock time of the last state change. */
  stateChangedAt: number;
  /** The state EC2 moves it to by itself, and when (pending → running, stopping → stopped, …). */
  transition?: { to: InstanceStateName; at: number };
  /** Launched with hibernation enabled (only then does StopInstances with Hibernate hibernate it). */
  hibernation: boolean;
  /** Its last stop was a hibernation: the next start resumes it. */
  hibernated?: boolean;
  /** Every boot, oldest first. */
  boots: InstanceBoot[];
}

export interface SandboxImage {
  imageId: string;
  name: string;
  state: "available" | "pending" | "failed";
  architecture: "x86_64" | "arm64";
  creationDate: number;
  snapshotIds: string[];
  tags: Record<string, string>;
  ownerId: string;
}

export interface SandboxSnapshot {
  snapshotId: string;
  volumeId: string;
  volumeSize: number;
  state: "pending" | "completed" | "error";
  startTime: number;
  description: string;
  tags: Record<string, string>;
  ownerId: string;
}

// ---- the Query protocol ----

type QueryValue = string | QueryValue[] | { [key: string]: QueryValue };
type QueryObject = { [key: string]: QueryValue };

/** `A.1.B=x&A.1.C.2=y` → `{ A: [{ B: "x", C: [, "y"] }] }` (1-based indexes become array slots). */
function parseQuery(body: string): QueryObject {
  const root: QueryObject = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const path = key.split(".");
    // biome-ignore lint/suspicious/noExplicitAny: walking a tree built from the key path.
    let node: any = root;
    path.forEach((segment, i) => {
      const last = i === path.length - 1;
      const slot = /^\d+$/.test(segment) ? Number(segment) - 1 : segment;
      if (last) {
        node[slot] = value;
        return;
      }
      const nextIsIndex = /^\d+$/.test(path[i + 1]!);
      node[slot] ??= nextIsIndex ? [] : {};
      node = node[slot];
    });
  }
  return root;
}

const list = (value: QueryValue | undefined): QueryValue[] =>
  Array.isArray(value) ? value.filter((v) => v !== undefined) : [];
const obj = (value: QueryValue | undefined): QueryObject =>
  value && typeof value === "object" && !Array.isArray(value) ? value : {};
const str = (value: QueryValue | undefined): string | undefined =>
  typeof value === "string" ? value : undefined;
const strings = (value: QueryValue | undefined): string[] => list(value).map((v) => String(v));

function tagsFrom(value: QueryValue | undefined): Record<string, string> {
  return Object.fromEntries(list(value).map((t) => [str(obj(t).Key) ?? "", str(obj(t).Value) ?? ""]));
}

/** Tags of the TagSpecification for `resourceType`. */
function tagSpecification(params: QueryObject, resourceType: string): Record<string, string> {
  const spec = list(params.TagSpecification).find((s) => str(obj(s).ResourceType) === resourceType);
  return spec ? tagsFrom(obj(spec).Tag) : {};
}

// ---- XML ----

type Xml = string | number | boolean | undefined | null | Xml[] | { [key: string]: Xml };

const escapeXml = (text: string) =>
  text.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!,
  );

/** Objects become elements, arrays become `<item>` lists, undefined members are left out. */
function toXml(value: Xml): string {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) return value.map((item) => `<item>${toXml(item)}</item>`).join("");
  if (typeof value === "object") {
    return Object.entries(value)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `<${k}>${toXml(v)}</${k}>`)
      .join("");
  }
  return escapeXml(String(value));
}

const iso = (ms: number) => new Date(ms).toISOString();
const tagSet = (tags: Record<string, string>) => Object.entries(tags).map(([key, value]) => ({ key, value }));

// ---- filters ----

/** AWS filter values: `*` any run of characters, `?` one character. */
function globMatch(pattern: string, value: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === value;
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${regex}$`, "s").test(value);
}

type FilterFields = Record<string, (resource: never) => string | string[] | undefined>;

/** Applies EC2 filters (AND across filters, OR across a filter's values); unknown names are an error. */
function filterBy<T>(items: T[], filters: QueryValue | undefined, fields: FilterFields): T[] {
  const parsed = list(filters).map((f) => ({ name: str(obj(f).Name) ?? "", values: strings(obj(f).Value) }));
  for (const { name } of parsed) {
    if (!name.startsWith("tag:") && !(name in fields)) {
      throw new ApiError("InvalidParameterValue", `The filter '${name}' is invalid`);
    }
  }
  return items.filter((item) =>
    parsed.every(({ name, values }) => {
      const tags = (item as { tags: Record<string, string> }).tags;
      const actual = name.startsWith("tag:")
        ? tags[name.slice(4)]
        : (fields[name] as (resource: T) => string | string[] | undefined)(item);
      const candidates = actual === undefined ? [] : Array.isArray(actual) ? actual : [actual];
      return candidates.some((c) => values.some((v) => globMatch(v, c)));
    }),
  );
}

const TAG_FILTERS: FilterFields = {
  "tag-key": (r: { tags: Record<string, string> }) => Object.keys(r.tags),
  "tag-value": (r: { tags: Record<string, string> }) => Object.values(r.tags),
};

function paginate<T>(
  items: T[],
  params: QueryObject,
  limits: { min: number; max: number },
): { page: T[]; next?: string } {
  const maxResults = str(params.MaxResults);
  const token = str(params.NextToken);
  let start = 0;
  if (token) {
    start = Number(Buffer.from(token, "base64").toString("utf8"));
    if (!Number.isInteger(start) || start < 0)
      throw new ApiError("InvalidParameterValue", "Invalid value for NextToken");
  }
  if (maxResults === undefined) return { page: items.slice(start) };
  const max = Number(maxResults);
  if (!(max >= limits.min && max <= limits.max)) {
    throw new ApiError(
      "InvalidParameterValue",
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between ${limits.min} and ${limits.max}.`,
    );
  }
  const end = start + max;
  return {
    page: items.slice(start, end),
    next: end < items.length ? Buffer.from(String(end)).toString("base64") : undefined,
  };
}

// ---- the fake ----

export interface Ec2FakeOptions {
  faults: Faults;
  clock: Clock;
  region: string;
  /** How long each transition takes (default INSTANT_BOOT: every one at the next read). */
  boot?: Partial<BootModel>;
  /** Shorthand for `boot.launchPendingMs`: how long a new instance stays `pending`. */
  pendingMs?: number;
  /** Shorthand for `boot.shutdownMs`: how long a terminating instance stays `shutting-down`. */
  shutdownMs?: number;
  /** Draws of the boot model's durations (default Math.random). */
  random?: () => number;
}

export type Ec2Fake = Awaited<ReturnType<typeof startEc2Fake>>;

export async function startEc2Fake(options: Ec2FakeOptions) {
  const { faults, clock, region, random = Math.random } = options;
  const model: BootModel = {
    ...INSTANT_BOOT,
    ...options.boot,
    ...(options.pendingMs !== undefined && { launchPendingMs: options.pendingMs }),
    ...(options.shutdownMs !== undefined && { shutdownMs: options.shutdownMs }),
  };
  const draw = (figure: keyof BootModel) => sampleMs(model[figure], random);
  const instances = new Map<string, SandboxInstance>();
  const images = new Map<string, SandboxImage>();
  const snapshots = new Map<string, SandboxSnapshot>();
  const subnets = new Map<string, { availabilityZone: string; vpcId: string }>();
  /** ClientToken → the request's digest and the answer it got. */
  const tokens = new Map<string, { digest: string; answer: Xml }>();
  let ipCounter = 10;

  const azOf = (subnetId: string | undefined, requestedAz?: string): string => {
    if (requestedAz) return requestedAz;
    if (!subnetId) return `${region}a`;
    const known = subnets.get(subnetId);
    if (known) return known.availabilityZone;
    // An unknown subnet gets a stable zone of its own.
    const letter = "abc"[createHash("sha1").update(subnetId).digest()[0]! % 3];
    return `${region}${letter}`;
  };

  /** Applies a time-driven transition that is due (pending → running, stopping → stopped, …). */
  const refresh = (instance: SandboxInstance) => {
    const due = instance.transition;
    if (due && clock.now() >= due.at) {
      instance.state = due.to;
      instance.stateChangedAt = due.at;
      instance.transition = undefined;
    }
    return instance;
  };

  /** Moves an instance to `state` now, and on to `then.to` after `then.ms` on its own. */
  const moveTo = (
    instance: SandboxInstance,
    state: InstanceStateName,
    reason?: string,
    then?: { to: InstanceStateName; ms: number },
  ) => {
    instance.state = state;
    instance.stateChangedAt = clock.now();
    if (reason !== undefined) instance.stateReason = reason;
    instance.transition = then && { to: then.to, at: instance.stateChangedAt + then.ms };
  };

  /**
   * A boot accepted at `at`: `pending`, then `running` on its own, the OS ready later. EC2's
   * LaunchTime is the time the instance was last launched or started.
   */
  const boot = (instance: SandboxInstance, kind: InstanceBoot["kind"], at = clock.now()) => {
    const [pending, ready] = {
      launch: ["launchPendingMs", "firstBootMs"] as const,
      start: ["startPendingMs", "restartBootMs"] as const,
      resume: ["resumePendingMs", "resumeMs"] as const,
    }[kind];
    const runningAt = at + draw(pending);
    Object.assign(instance, {
      state: "pending",
      stateChangedAt: at,
      stateReason: undefined,
      transition: { to: "running", at: runningAt },
      launchTime: at,
    });
    instance.boots.push({ kind, requestedAt: at, runningAt, readyAt: runningAt + draw(ready) });
  };

  /** Launch templates the sandbox knows something about (it has no template contents otherwise). */
  const templates = new Map<string, { hibernation?: boolean; imageId?: string }>();
  const templateHibernation = (id: string | undefined) => !!(id && templates.get(id)?.hibernation);
  const templateImage = (id: string | undefined) => (id ? templates.get(id)?.imageId : undefined);

  const launch = (spec: {
    instanceType: string;
    subnetId?: string;
    availabilityZone?: string;
    imageId?: string;
    market: Lifecycle;
    tags: Record<string, string>;
    reservationId: string;
    launchTemplate?: SandboxInstance["launchTemplate"];
    clientToken?: string;
    state?: InstanceStateName;
    launchTime?: number;
    hibernation?: boolean;
  }): SandboxInstance => {
    const now = spec.launchTime ?? clock.now();
    const ip = ipCounter++;
    const instance: SandboxInstance = {
      instanceId: `i-0${randomHex(16)}`,
      imageId: spec.imageId ?? templateImage(spec.launchTemplate?.id) ?? "ami-0sandbox00000000",
      instanceType: spec.instanceType,
      subnetId: spec.subnetId,
      vpcId: (spec.subnetId && subnets.get(spec.subnetId)?.vpcId) || "vpc-0sandbox0000000",
      availabilityZone: azOf(spec.subnetId, spec.availabilityZone),
      privateIpAddress: `10.0.${Math.floor(ip / 250) % 250}.${(ip % 250) + 1}`,
      state: spec.state ?? "pending",
      market: spec.market,
      launchTime: now,
      stateChangedAt: now,
      tags: { ...spec.tags },
      reservationId: spec.reservationId,
      launchTemplate: spec.launchTemplate,
      clientToken: spec.clientToken,
      spotInstanceRequestId: spec.market === "spot" ? `sir-${randomHex(8)}` : undefined,
      hibernation: spec.hibernation ?? templateHibernation(spec.launchTemplate?.id),
      boots: [],
    };
    instances.set(instance.instanceId, instance);
    if (instance.state === "pending") boot(instance, "launch", now);
    else instance.boots.push({ kind: "launch", requestedAt: now, runningAt: now, readyAt: now });
    return instance;
  };

  const instanceXml = (i: SandboxInstance): Xml => ({
    instanceId: i.instanceId,
    imageId: i.imageId,
    instanceState: { code: STATE_CODES[i.state], name: i.state },
    privateDnsName: `ip-${i.privateIpAddress.replaceAll(".", "-")}.ec2.internal`,
    dnsName: "",
    reason: i.stateReason ?? "",
    amiLaunchIndex: 0,
    instanceType: i.instanceType,
    launchTime: iso(i.launchTime),
    placement: { availabilityZone: i.availabilityZone, tenancy: "default" },
    monitoring: { state: "disabled" },
    subnetId: i.subnetId,
    vpcId: i.vpcId,
    privateIpAddress: i.privateIpAddress,
    stateReason: i.stateReason ? { code: i.stateReason, message: i.stateReason } : undefined,
    architecture: i.instanceType.match(/^[a-z]+\d+g/) ? "arm64" : "x86_64",
    rootDeviceType: "ebs",
    rootDeviceName: "/dev/sda1",
    instanceLifecycle: i.market === "spot" ? "spot" : undefined,
    spotInstanceRequestId: i.spotInstanceRequestId,
    clientToken: i.clientToken,
    hibernationOptions: { configured: i.hibernation },
    tagSet: Object.keys(i.tags).length ? tagSet(i.tags) : undefined,
  });

  /** Instances as DescribeInstances sees them: terminated ones drop out after an hour. */
  const visibleInstances = (): SandboxInstance[] => {
    const now = clock.now();
    const visible: SandboxInstance[] = [];
    for (const instance of instances.values()) {
      refresh(instance);
      if (instance.state === "terminated" && now - instance.stateChangedAt > TERMINATED_VISIBLE_MS) {
        instances.delete(instance.instanceId);
        continue;
      }
      visible.push(instance);
    }
    return visible;
  };

  const instanceById = (id: string): SandboxInstance => {
    if (!/^i-[0-9a-f]{8,17}$/.test(id))
      throw new ApiError("InvalidInstanceID.Malformed", `Invalid id: "${id}"`);
    const instance = instances.get(id);
    if (!instance) throw new ApiError("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
    return refresh(instance);
  };

  const imageById = (id: string): SandboxImage => {
    const image = images.get(id);
    if (!image) throw new ApiError("InvalidAMIID.NotFound", `The image id '[${id}]' does not exist`);
    return image;
  };

  const snapshotById = (id: string): SandboxSnapshot => {
    const snapshot = snapshots.get(id);
    if (!snapshot) throw new ApiError("InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`);
    return snapshot;
  };

  const taggable = (id: string): { tags: Record<string, string> } => {
    if (id.startsWith("i-")) {
      // A plain lookup, not instanceById: no Malformed check, no state refresh.
      const instance = instances.get(id);
      if (!instance)
        throw new ApiError("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
      return instance;
    }
    if (id.startsWith("ami-")) return imageById(id);
    if (id.startsWith("snap-")) return snapshotById(id);
    throw new ApiError("InvalidID", `The ID '${id}' is not valid`);
  };

  const owned = (owners: string[], ownerId: string) =>
    owners.length === 0 || owners.some((o) => o === "self" || o === ownerId);

  // ---- CreateFleet ----

  interface Pool {
    launchTemplate: { launchTemplateId?: string; launchTemplateName?: string; version?: string };
    overrides: Record<string, string | undefined>;
    priority: number;
    order: number;
  }

  const fleetAnswer = (
    params: QueryObject,
    request: { service: "ec2"; operation: string; params: unknown },
  ): Xml => {
    const type = str(params.Type) ?? "maintain";
    if (type !== "instant") {
      throw new ApiError(
        "InvalidParameterValue",
        `The sandbox supports only CreateFleet Type=instant, not ${type}`,
      );
    }
    const capacity = obj(params.TargetCapacitySpecification);
    const total = Number(str(capacity.TotalTargetCapacity));
    const defaultType = str(capacity.DefaultTargetCapacityType);
    if (!(total >= 1))
      throw new ApiError("InvalidTargetCapacitySpecification", "TotalTargetCapacity must be at least 1");
    if (defaultType !== "spot" && defaultType !== "on-demand") {
      throw new ApiError("InvalidParameterValue", "DefaultTargetCapacityType must be spot or on-demand");
    }
    const explicitSpot = str(capacity.SpotTargetCapacity);
    const explicitOnDemand = str(capacity.OnDemandTargetCapacity);
    const onDemandTarget =
      defaultType === "on-demand" ? total - Number(explicitSpot ?? 0) : Number(explicitOnDemand ?? 0);
    const spotTarget = total - onDemandTarget;

    const pools: Pool[] = [];
    for (const config of list(params.LaunchTemplateConfigs)) {
      const spec = obj(obj(config).LaunchTemplateSpecification);
      const launchTemplate = {
        launchTemplateId: str(spec.LaunchTemplateId),
        launchTemplateName: str(spec.LaunchTemplateName),
        version: str(spec.Version),
      };
      if (!launchTemplate.launchTemplateId && !launchTemplate.launchTemplateName) {
        throw new ApiError(
          "InvalidLaunchTemplateId.Malformed",
          "A launch template ID or name must be specified",
        );
      }
      const overrides = list(obj(config).Overrides);
      for (const override of overrides.length ? overrides : [{}]) {
        const o = obj(override);
        pools.push({
          launchTemplate,
          overrides: {
            InstanceType: str(o.InstanceType),
            SubnetId: str(o.SubnetId),
            AvailabilityZone: str(o.AvailabilityZone),
            Priority: str(o.Priority),
            WeightedCapacity: str(o.WeightedCapacity),
            MaxPrice: str(o.MaxPrice),
          },
          priority: str(o.Priority) === undefined ? Number.POSITIVE_INFINITY : Number(str(o.Priority)),
          order: pools.length,
        });
      }
    }
    if (pools.length === 0)
      throw new ApiError("MissingParameter", "The request must contain the parameter LaunchTemplateConfigs");
    for (const pool of pools) {
      if (!pool.overrides.InstanceType) {
        throw new ApiError(
          "InvalidParameterValue",
          "The sandbox needs InstanceType in every override (it has no launch template contents)",
        );
      }
    }

    const fleetId = `fleet-${randomUUID()}`;
    const reservationId = `r-0${randomHex(16)}`;
    const instanceTags = tagSpecification(params, "instance");
    const clientToken = str(params.ClientToken);
    const fleetInstanceSet: Xml[] = [];
    const errorSet: Xml[] = [];
    const poolXml = (pool: Pool): Xml => ({
      launchTemplateSpecification: pool.launchTemplate,
      overrides: {
        instanceType: pool.overrides.InstanceType,
        maxPrice: pool.overrides.MaxPrice,
        subnetId: pool.overrides.SubnetId,
        availabilityZone: pool.overrides.AvailabilityZone,
        weightedCapacity: pool.overrides.WeightedCapacity,
        priority: pool.overrides.Priority,
      },
    });

    const fill = (lifecycle: Lifecycle, target: number, strategy: string | undefined) => {
      if (target <= 0) return;
      // The sandbox has no capacity pools to rank: "prioritized" strategies follow Priority, the
      // others take the overrides in the order given. Each pool either fails (an injected error)
      // or takes all the capacity still wanted.
      const ordered = strategy?.includes("prioritized")
        ? [...pools].sort((a, b) => a.priority - b.priority || a.order - b.order)
        : pools;
      const failureOf = faults.inlineFailures(request, FLEET_INLINE_CODES);
      let remaining = target;
      for (const pool of ordered) {
        if (remaining <= 0) break;
        const availabilityZone = azOf(pool.overrides.SubnetId, pool.overrides.AvailabilityZone);
        const error = failureOf({
          instanceType: pool.overrides.InstanceType,
          subnetId: pool.overrides.SubnetId,
          availabilityZone,
          lifecycle,
          launchTemplateId: pool.launchTemplate.launchTemplateId,
        });
        if (error) {
          errorSet.push({
            launchTemplateAndOverrides: poolXml(pool),
            lifecycle,
            errorCode: error.code,
            errorMessage: error.message ?? defaultFleetMessage(error.code, lifecycle),
          });
          continue;
        }
        const launched = Array.from({ length: remaining }, () =>
          launch({
            instanceType: pool.overrides.InstanceType!,
            subnetId: pool.overrides.SubnetId,
            availabilityZone: pool.overrides.AvailabilityZone,
            market: lifecycle,
            tags: instanceTags,
            reservationId,
            launchTemplate: {
              id: pool.launchTemplate.launchTemplateId,
              name: pool.launchTemplate.launchTemplateName,
              version: pool.launchTemplate.version,
            },
            clientToken,
          }),
        );
        remaining = 0;
        fleetInstanceSet.push({
          launchTemplateAndOverrides: poolXml(pool),
          lifecycle,
          instanceIds: launched.map((i) => i.instanceId),
          instanceType: pool.overrides.InstanceType,
        });
      }
    };
    fill("spot", spotTarget, str(obj(params.SpotOptions).AllocationStrategy));
    fill("on-demand", onDemandTarget, str(obj(params.OnDemandOptions).AllocationStrategy));
    return {
      fleetId,
      errorSet: errorSet.length ? errorSet : undefined,
      fleetInstanceSet: fleetInstanceSet.length ? fleetInstanceSet : undefined,
    };
  };

  /** Same token and same request: the first answer again; same token, other request: an error. */
  const idempotent = (params: QueryObject, answer: () => Xml): Xml => {
    const token = str(params.ClientToken);
    if (!token) return answer();
    const { ClientToken: _token, ...rest } = params;
    const digest = createHash("sha256").update(JSON.stringify(rest)).digest("hex");
    const previous = tokens.get(token);
    if (previous) {
      if (previous.digest !== digest) {
        throw new ApiError(
          "IdempotentParameterMismatch",
          "The client token you have provided is associated with a resource that is already deleted or a request with different parameters. Please use a different client token.",
        );
      }
      return previous.answer;
    }
    const result = answer();
    tokens.set(token, { digest, answer: result });
    return result;
  };

  /** running → stopping → stopped (hibernating: the RAM written to the root volume first). */
  const stop = (instance: SandboxInstance, hibernate: boolean, reason = "Client.UserInitiatedShutdown") => {
    instance.hibernated = hibernate || undefined;
    moveTo(instance, "stopping", reason, {
      to: "stopped",
      ms: draw(hibernate ? "hibernatingMs" : "stoppingMs"),
    });
  };

  /**
   * Stop/StartInstances: `check` throws if an instance cannot make the change (then none changes,
   * as on EC2) or returns the change to apply (none: it is already there). Answers each instance's
   * previous and current state.
   */
  const stateChanges = (
    params: QueryObject,
    check: (instance: SandboxInstance) => (() => void) | undefined,
  ): Xml => {
    const ids = strings(params.InstanceId);
    if (!ids.length)
      throw new ApiError("MissingParameter", "The request must contain the parameter InstanceId");
    const targets = ids.map(instanceById);
    const changes = targets.map(check);
    return {
      instancesSet: targets.map((instance, i) => {
        const previous = instance.state;
        changes[i]?.();
        return {
          instanceId: instance.instanceId,
          currentState: { code: STATE_CODES[instance.state], name: instance.state },
          previousState: { code: STATE_CODES[previous], name: previous },
        };
      }),
    };
  };

  // ---- operations ----

  type Operation = (
    params: QueryObject,
    request: { service: "ec2"; operation: string; params: unknown },
  ) => Xml;

  const operations: Record<string, Operation> = {
    CreateFleet: (params, request) => idempotent(params, () => fleetAnswer(params, request)),

    RunInstances: (params) =>
      idempotent(params, () => {
        const min = Number(str(params.MinCount) ?? "1");
        const max = Number(str(params.MaxCount) ?? "1");
        if (!(min >= 1 && max >= min))
          throw new ApiError("InvalidParameterValue", "MinCount and MaxCount are invalid");
        const template = obj(params.LaunchTemplate);
        const instanceType = str(params.InstanceType);
        if (!instanceType) {
          throw new ApiError(
            "InvalidParameterValue",
            "The sandbox needs InstanceType (it has no launch template contents)",
          );
        }
        const market = str(obj(params.InstanceMarketOptions).MarketType) === "spot" ? "spot" : "on-demand";
        const reservationId = `r-0${randomHex(16)}`;
        const launched = Array.from({ length: max }, () =>
          launch({
            instanceType,
            subnetId: str(params.SubnetId),
            availabilityZone: str(obj(params.Placement).AvailabilityZone),
            imageId: str(params.ImageId),
            market,
            tags: tagSpecification(params, "instance"),
            reservationId,
            launchTemplate:
              str(template.LaunchTemplateId) || str(template.LaunchTemplateName)
                ? {
                    id: str(template.LaunchTemplateId),
                    name: str(template.LaunchTemplateName),
                    version: str(template.Version),
                  }
                : undefined,
            clientToken: str(params.ClientToken),
            hibernation: str(obj(params.HibernationOptions).Configured) === "true" || undefined,
          }),
        );
        return {
          reservationId,
          ownerId: ACCOUNT_ID,
          groupSet: [],
          instancesSet: launched.map(instanceXml),
        };
      }),

    DescribeInstances: (params) => {
      const ids = strings(params.InstanceId);
      if (ids.length && str(params.MaxResults)) {
        throw new ApiError(
          "InvalidParameterCombination",
          "The parameter instancesSet cannot be used with the parameter maxResults",
        );
      }
      let selected = ids.length ? ids.map(instanceById) : visibleInstances();
      selected = filterBy(selected, params.Filter, {
        ...TAG_FILTERS,
        "instance-id": (i: SandboxInstance) => i.instanceId,
        "instance-state-name": (i: SandboxInstance) => i.state,
        "instance-state-code": (i: SandboxInstance) => String(STATE_CODES[i.state]),
        "instance-type": (i: SandboxInstance) => i.instanceType,
        "instance-lifecycle": (i: SandboxInstance) => (i.market === "spot" ? "spot" : undefined),
        "subnet-id": (i: SandboxInstance) => i.subnetId,
        "vpc-id": (i: SandboxInstance) => i.vpcId,
        "availability-zone": (i: SandboxInstance) => i.availabilityZone,
        "image-id": (i: SandboxInstance) => i.imageId,
        "reservation-id": (i: SandboxInstance) => i.reservationId,
        "client-token": (i: SandboxInstance) => i.clientToken,
        "private-ip-address": (i: SandboxInstance) => i.privateIpAddress,
      });
      const { page, next } = paginate(selected, params, { min: 5, max: 1000 });
      const reservations = new Map<string, SandboxInstance[]>();
      for (const instance of page) {
        const group = reservations.get(instance.reservationId) ?? [];
        group.push(instance);
        reservations.set(instance.reservationId, group);
      }
      return {
        reservationSet: [...reservations].map(([reservationId, members]) => ({
          reservationId,
          ownerId: ACCOUNT_ID,
          groupSet: [],
          instancesSet: members.map(instanceXml),
        })),
        nextToken: next,
      };
    },

    TerminateInstances: (params) => {
      const ids = strings(params.InstanceId);
      if (!ids.length)
        throw new ApiError("MissingParameter", "The request must contain the parameter InstanceId");
      const targets = ids.map(instanceById);
      return {
        instancesSet: targets.map((instance) => {
          const previous = instance.state;
          if (previous !== "terminated" && previous !== "shutting-down") {
            moveTo(instance, "shutting-down", "Client.UserInitiatedShutdown", {
              to: "terminated",
              ms: draw("shutdownMs"),
            });
          }
          const current = instance.state;
          return {
            instanceId: instance.instanceId,
            currentState: { code: STATE_CODES[current], name: current },
            previousState: { code: STATE_CODES[previous], name: previous },
          };
        }),
      };
    },

    StopInstances: (params) => {
      const hibernate = str(params.Hibernate) === "true";
      return stateChanges(params, (instance) => {
        const id = instance.instanceId;
        if (instance.market === "spot") {
          throw new ApiError(
            "UnsupportedOperation",
            `You can't stop the Spot Instance '${id}' because it is associated with a one-time Spot Instance request.`,
          );
        }
        if (hibernate && !instance.hibernation) {
          throw new ApiError("UnsupportedOperation", `The instance '${id}' is not enabled for hibernation.`);
        }
        if (instance.state === "stopping" || instance.state === "stopped") return undefined;
        if (instance.state !== "running") {
          throw new ApiError(
            "IncorrectInstanceState",
            `This instance '${id}' is not in a state from which it can be stopped.`,
          );
        }
        return () => stop(instance, hibernate, hibernate ? "Client.UserInitiatedHibernate" : undefined);
      });
    },

    StartInstances: (params) =>
      stateChanges(params, (instance) => {
        if (instance.state === "pending" || instance.state === "running") return undefined;
        if (instance.state !== "stopped") {
          throw new ApiError(
            "IncorrectInstanceState",
            `The instance '${instance.instanceId}' is not in a state from which it can be started.`,
          );
        }
        return () => {
          boot(instance, instance.hibernated ? "resume" : "start");
          instance.hibernated = undefined;
        };
      }),

    CreateTags: (params) => {
      const resources = strings(params.ResourceId).map(taggable);
      const tags = tagsFrom(params.Tag);
      for (const resource of resources) Object.assign(resource.tags, tags);
      return { return: true };
    },

    DeleteTags: (params) => {
      const resources = strings(params.ResourceId).map(taggable);
      const tags = list(params.Tag).map((t) => ({ key: str(obj(t).Key) ?? "", value: str(obj(t).Value) }));
      for (const resource of resources) {
        for (const { key, value } of tags) {
          if (value === undefined || resource.tags[key] === value) delete resource.tags[key];
        }
      }
      return { return: true };
    },

    DescribeImages: (params) => {
      const owners = strings(params.Owner);
      const ids = strings(params.ImageId);
      let selected = ids.length ? ids.map(imageById) : [...images.values()];
      selected = selected.filter((image) => owned(owners, image.ownerId));
      selected = filterBy(selected, params.Filter, {
        ...TAG_FILTERS,
        "image-id": (i: SandboxImage) => i.imageId,
        name: (i: SandboxImage) => i.name,
        state: (i: SandboxImage) => i.state,
        architecture: (i: SandboxImage) => i.architecture,
        "owner-id": (i: SandboxImage) => i.ownerId,
        "block-device-mapping.snapshot-id": (i: SandboxImage) => i.snapshotIds,
      });
      const { page, next } = paginate(selected, params, { min: 1, max: 1000 });
      return {
        imagesSet: page.map((image) => ({
          imageId: image.imageId,
          imageLocation: `${image.ownerId}/${image.name}`,
          imageState: image.state,
          imageOwnerId: image.ownerId,
          creationDate: iso(image.creationDate),
          isPublic: false,
          architecture: image.architecture,
          imageType: "machine",
          name: image.name,
          rootDeviceType: "ebs",
          rootDeviceName: "/dev/sda1",
          virtualizationType: "hvm",
          blockDeviceMapping: image.snapshotIds.map((snapshotId, n) => ({
            deviceName: n === 0 ? "/dev/sda1" : `/dev/sd${String.fromCharCode(98 + n)}`,
            ebs: {
              snapshotId,
              volumeSize: snapshots.get(snapshotId)?.volumeSize ?? 8,
              deleteOnTermination: true,
              volumeType: "gp3",
            },
          })),
          tagSet: Object.keys(image.tags).length ? tagSet(image.tags) : undefined,
        })),
        nextToken: next,
      };
    },

    DeregisterImage: (params) => {
      const id = str(params.ImageId) ?? "";
      const image = imageById(id);
      images.delete(id);
      if (str(params.DeleteAssociatedSnapshots) === "true") {
        for (const snapshotId of image.snapshotIds) snapshots.delete(snapshotId);
      }
      return { return: true };
    },

    DescribeSnapshots: (params) => {
      const owners = strings(params.Owner);
      const ids = strings(params.SnapshotId);
      let selected = ids.length ? ids.map(snapshotById) : [...snapshots.values()];
      selected = selected.filter((snapshot) => owned(owners, snapshot.ownerId));
      selected = filterBy(selected, params.Filter, {
        ...TAG_FILTERS,
        "snapshot-id": (s: SandboxSnapshot) => s.snapshotId,
        "volume-id": (s: SandboxSnapshot) => s.volumeId,
        status: (s: SandboxSnapshot) => s.state,
        description: (s: SandboxSnapshot) => s.description,
        "owner-id": (s: SandboxSnapshot) => s.ownerId,
      });
      const { page, next } = paginate(selected, params, { min: 5, max: 1000 });
      return {
        snapshotSet: page.map((s) => ({
          snapshotId: s.snapshotId,
          volumeId: s.volumeId,
          status: s.state,
          startTime: iso(s.startTime),
          progress: s.state === "completed" ? "100%" : "0%",
          ownerId: s.ownerId,
          volumeSize: s.volumeSize,
          description: s.description,
          encrypted: false,
          tagSet: Object.keys(s.tags).length ? tagSet(s.tags) : undefined,
        })),
        nextToken: next,
      };
    },

    DeleteSnapshot: (params) => {
      const id = str(params.SnapshotId) ?? "";
      snapshotById(id);
      const user = [...images.values()].find((image) => image.snapshotIds.includes(id));
      if (user) {
        throw new ApiError(
          "InvalidSnapshot.InUse",
          `The snapshot ${id} is currently in use by ${user.imageId}`,
        );
      }
      snapshots.delete(id);
      return { return: true };
    },
  };

  const server: LocalServer = await listen(async (req, res) => {
    const raw = (await readBody(req)).toString("utf8");
    const params = parseQuery(raw);
    const operation = str(params.Action) ?? "";
    const answerError = (error: ApiError, headers: Record<string, string> = {}) => {
      faults.record({ service: "ec2", operation, params, status: error.status, errorCode: error.code });
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`;
      send(res, error.status, xml, { "content-type": "text/xml;charset=UTF-8", ...headers });
    };
    const run = operations[operation];
    if (!run) {
      return answerError(
        new ApiError(
          "InvalidAction",
          `The action ${operation} is not valid for this web service (the sandbox does not implement it).`,
        ),
      );
    }
    const request = { service: "ec2" as const, operation, params };
    const fault = await faults.intercept(request, {
      mutating: !/^(Describe|Get)/.test(operation),
      throttleError: THROTTLE,
      inlineCodes: operation === "CreateFleet" ? FLEET_INLINE_CODES : undefined,
    });
    if (fault) return answerError(ApiError.fromFault(fault, STATUS), fault.headers);
    if (str(params.DryRun) === "true") {
      return answerError(
        new ApiError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412),
      );
    }
    let result: Xml;
    try {
      result = run(params, request);
    } catch (error) {
      if (error instanceof ApiError) return answerError(error);
      throw error;
    }
    faults.record({ service: "ec2", operation, params, status: 200 });
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<${operation}Response xmlns="${NAMESPACE}"><requestId>${randomUUID()}</requestId>${toXml(result)}</${operation}Response>`;
    send(res, 200, xml, { "content-type": "text/xml;charset=UTF-8" });
  });

  const snapshotOf = (i: SandboxInstance): SandboxInstance => ({
    ...refresh(i),
    tags: { ...i.tags },
    boots: i.boots.map((b) => ({ ...b })),
  });

  return {
    url: server.url,
    /** Every instance the sandbox knows (terminated ones too, until they age out), oldest first. */
    instances(
      filter: { state?: InstanceStateName | InstanceStateName[]; tag?: Record<string, string> } = {},
    ): SandboxInstance[] {
      const states =
        filter.state === undefined ? undefined : ([] as InstanceStateName[]).concat(filter.state);
      return visibleInstances()
        .filter((i) => !states || states.includes(i.state))
        .filter((i) => Object.entries(filter.tag ?? {}).every(([k, v]) => i.tags[k] === v))
        .map(snapshotOf);
    },
    instance(instanceId: string): SandboxInstance | undefined {
      const instance = instances.get(instanceId);
      return instance && snapshotOf(instance);
    },
    /** Moves an instance to `state` (e.g. "terminated" with reason "Server.SpotInstanceTermination"). */
    setState(instanceId: string, state: InstanceStateName, reason?: string): void {
      const instance = instances.get(instanceId);
      if (!instance) throw new Error(`sandbox: no instance ${instanceId}`);
      moveTo(instance, state, reason);
    },
    /**
     * The OS of a running instance shuts itself down (`shutdown -h now`): it stops or terminates as
     * its InstanceInitiatedShutdownBehavior says (the launch template's; EC2's default is stop).
     */
    osShutdown(instanceId: string, behavior: "stop" | "terminate" = "stop"): void {
      const instance = instances.get(instanceId);
      if (!instance) throw new Error(`sandbox: no instance ${instanceId}`);
      const reason = "Client.InstanceInitiatedShutdown";
      if (behavior === "stop") stop(instance, false, reason);
      else moveTo(instance, "shutting-down", reason, { to: "terminated", ms: draw("shutdownMs") });
    },
    /**
     * What the sandbox knows of a launch template: instances launched from it get its hibernation
     * setting and its AMI (`imageId`; a request's own ImageId wins). Settings not given are kept.
     */
    configureLaunchTemplate(
      launchTemplateId: string,
      settings: { hibernation?: boolean; imageId?: string },
    ): void {
      templates.set(launchTemplateId, { ...templates.get(launchTemplateId), ...settings });
    },
    /** Seeds an instance (default: running on-demand m7i.large, launched now). Returns its id. */
    addInstance(
      spec: Partial<
        Pick<
          SandboxInstance,
          | "instanceType"
          | "subnetId"
          | "availabilityZone"
          | "imageId"
          | "market"
          | "tags"
          | "state"
          | "launchTime"
        >
      > = {},
    ): string {
      return launch({
        instanceType: spec.instanceType ?? "m7i.large",
        subnetId: spec.subnetId,
        availabilityZone: spec.availabilityZone,
        imageId: spec.imageId,
        market: spec.market ?? "on-demand",
        tags: spec.tags ?? {},
        reservationId: `r-0${randomHex(16)}`,
        state: spec.state ?? "running",
        launchTime: spec.launchTime,
      }).instanceId;
    },
    /** Seeds an AMI owned by the account; its snapshots must exist (see addSnapshot). Returns its id. */
    addImage(spec: Partial<Omit<SandboxImage, "imageId" | "ownerId">> = {}): string {
      const imageId = `ami-0${randomHex(16)}`;
      images.set(imageId, {
        imageId,
        name: spec.name ?? `sandbox-image-${imageId}`,
        state: spec.state ?? "available",
        architecture: spec.architecture ?? "x86_64",
        creationDate: spec.creationDate ?? clock.now(),
        snapshotIds: spec.snapshotIds ?? [],
        tags: { ...spec.tags },
        ownerId: ACCOUNT_ID,
      });
      return imageId;
    },
    addSnapshot(spec: Partial<Omit<SandboxSnapshot, "snapshotId" | "ownerId">> = {}): string {
      const snapshotId = `snap-0${randomHex(16)}`;
      snapshots.set(snapshotId, {
        snapshotId,
        volumeId: spec.volumeId ?? `vol-0${randomHex(16)}`,
        volumeSize: spec.volumeSize ?? 30,
        state: spec.state ?? "completed",
        startTime: spec.startTime ?? clock.now(),
        description: spec.description ?? "",
        tags: { ...spec.tags },
        ownerId: ACCOUNT_ID,
      });
      return snapshotId;
    },
    images: (): SandboxImage[] => [...images.values()].map((i) => ({ ...i, tags: { ...i.tags } })),
    snapshots: (): SandboxSnapshot[] => [...snapshots.values()].map((s) => ({ ...s, tags: { ...s.tags } })),
    /** Declares a subnet's zone (unknown subnets get a stable zone derived from their id). */
    addSubnet(subnetId: string, availabilityZone: string, vpcId = "vpc-0sandbox0000000"): void {
      subnets.set(subnetId, { availabilityZone, vpcId });
    },
    reset(): void {
      instances.clear();
      templates.clear();
      images.clear();
      snapshots.clear();
      tokens.clear();
    },
    close: () => server.close(),
  };
}

function defaultFleetMessage(code: string, lifecycle: Lifecycle): string {
  if (code === "InsufficientInstanceCapacity") {
    return lifecycle === "spot"
      ? "There is no Spot capacity available that matches your request."
      : "We currently do not have sufficient capacity in the Availability Zone you requested.";
  }
  return code;
}
