import { describe, expect, it } from "vitest";
import {
  allocateSlots,
  budgetWaitSeconds,
  claimsOverLimits,
  queueTimedOut,
  withRecentClaims,
} from "../lambda/core/admission";
import {
  assignInstances,
  buildFleetRequest,
  clientTokenFor,
  groupByConfig,
  LAUNCH_TEMPLATE_VERSION,
  readFleetResult,
} from "../lambda/core/fleet-request";
import {
  backoffSeconds,
  classifyFleetError,
  classifyFleetErrors,
  classifyRegistrationError,
  decideAfterFailure,
  initialMarket,
} from "../lambda/core/spot-fallback";
import { TAGS } from "../lambda/core/stack-identity";
import type { LabelConfig } from "../lambda/shared/label-config";

const config: LabelConfig = {
  name: "linux-x64-large",
  labels: ["self-hosted", "linux", "x64", "large"],
  arch: "x64",
  instanceTypes: ["m7i.xlarge", "m6i.xlarge", "m5.xlarge"],
  launchTemplateId: "lt-0123",
  spotPolicy: "spotPreferred",
  spotFailuresBeforeOnDemand: 1,
  allocationStrategy: "price-capacity-optimized",
  maxRunners: 10,
  retryOnInterruption: true,
  runnerGroupId: 1,
};

describe("groupByConfig", () => {
  it("groups messages by config, keeping arrival order", () => {
    const groups = groupByConfig([
      { jobId: "1", configName: "a" },
      { jobId: "2", configName: "b" },
      { jobId: "3", configName: "a" },
    ]);
    expect([...groups.keys()]).toEqual(["a", "b"]);
    expect(groups.get("a")?.map((m) => m.jobId)).toEqual(["1", "3"]);
  });
});

describe("allocateSlots", () => {
  it("caps each config at its maxRunners minus its active jobs", () => {
    const slots = allocateSlots([{ configName: "a", maxRunners: 5, wanted: 10 }], new Map([["a", 3]]), 100);
    expect(slots.get("a")).toBe(2);
  });
  it("shares the total limit across configs in request order", () => {
    const slots = allocateSlots(
      [
        { configName: "a", maxRunners: 50, wanted: 8 },
        { configName: "b", maxRunners: 50, wanted: 8 },
      ],
      new Map([["c", 5]]),
      15,
    );
    expect(slots.get("a")).toBe(8);
    expect(slots.get("b")).toBe(2);
  });
  it("grants nothing when a limit is already exceeded", () => {
    const slots = allocateSlots([{ configName: "a", maxRunners: 2, wanted: 3 }], new Map([["a", 4]]), 100);
    expect(slots.get("a")).toBe(0);
  });
});

describe("initialMarket", () => {
  it("follows the policy and the spot failures so far", () => {
    expect(initialMarket({ ...config, spotPolicy: "onDemandOnly" })).toBe("on-demand");
    expect(initialMarket({ ...config, spotPolicy: "spotOnly" }, 10)).toBe("spot");
    expect(initialMarket(config, 0)).toBe("spot");
    expect(initialMarket(config, 1)).toBe("on-demand");
    expect(initialMarket({ ...config, spotFailuresBeforeOnDemand: 3 }, 2)).toBe("spot");
  });
});

describe("clientTokenFor", () => {
  it("is stable for the same jobs and attempts in any order, and at most 64 characters", () => {
    const a = clientTokenFor(
      [
        { jobId: "1", attempts: 1 },
        { jobId: "2", attempts: 1 },
      ],
      "spot",
    );
    const b = clientTokenFor(
      [
        { jobId: "2", attempts: 1 },
        { jobId: "1", attempts: 1 },
      ],
      "spot",
    );
    expect(a).toBe(b);
    expect(a.length).toBeLessThanOrEqual(64);
  });
  it("changes with the attempt and the market", () => {
    const base = clientTokenFor([{ jobId: "1", attempts: 1 }], "spot");
    expect(clientTokenFor([{ jobId: "1", attempts: 2 }], "spot")).not.toBe(base);
    expect(clientTokenFor([{ jobId: "1", attempts: 1 }], "on-demand")).not.toBe(base);
  });
});

describe("buildFleetRequest", () => {
  it("asks for every type × subnet in one instant spot fleet with the config's strategy", () => {
    const request = buildFleetRequest({
      config,
      subnetIds: ["subnet-a", "subnet-b"],
      market: "spot",
      count: 25,
      clientToken: "tok",
      stackName: "dev",
    });
    expect(request.Type).toBe("instant");
    expect(request.ClientToken).toBe("tok");
    const ltc = request.LaunchTemplateConfigs?.[0];
    expect(ltc?.LaunchTemplateSpecification).toEqual({
      LaunchTemplateId: "lt-0123",
      Version: LAUNCH_TEMPLATE_VERSION,
    });
    expect(ltc?.Overrides).toHaveLength(6);
    expect(ltc?.Overrides).toContainEqual({ InstanceType: "m5.xlarge", SubnetId: "subnet-b" });
    expect(request.TargetCapacitySpecification).toMatchObject({
      TotalTargetCapacity: 25,
      DefaultTargetCapacityType: "spot",
      SpotTargetCapacity: 25,
    });
    expect(request.SpotOptions?.AllocationStrategy).toBe("price-capacity-optimized");
    expect(request.OnDemandOptions).toBeUndefined();
    const instanceTags = request.TagSpecifications?.find((t) => t.ResourceType === "instance")?.Tags;
    expect(instanceTags).toContainEqual({ Key: TAGS.stack, Value: "dev" });
    expect(instanceTags).toContainEqual({ Key: TAGS.config, Value: "linux-x64-large" });
  });
  it("asks on-demand without spot options", () => {
    const request = buildFleetRequest({
      config,
      subnetIds: ["subnet-a"],
      market: "on-demand",
      count: 2,
      clientToken: "tok",
      stackName: "dev",
    });
    expect(request.TargetCapacitySpecification).toMatchObject({
      DefaultTargetCapacityType: "on-demand",
      OnDemandTargetCapacity: 2,
    });
    expect(request.SpotOptions).toBeUndefined();
  });
  it("refuses a request without subnets", () => {
    expect(() =>
      buildFleetRequest({
        config,
        subnetIds: [],
        market: "spot",
        count: 1,
        clientToken: "t",
        stackName: "dev",
      }),
    ).toThrow(/SUBNET_IDS/);
  });
});

describe("readFleetResult and assignInstances", () => {
  const output = {
    Instances: [
      {
        InstanceIds: ["i-1", "i-2"],
        InstanceType: "m6i.xlarge" as never,
        Lifecycle: "spot" as const,
        LaunchTemplateAndOverrides: { Overrides: { SubnetId: "subnet-a", AvailabilityZone: "eu-west-1a" } },
      },
    ],
    Errors: [
      {
        ErrorCode: "InsufficientInstanceCapacity",
        ErrorMessage: "no capacity",
        LaunchTemplateAndOverrides: {
          Overrides: { InstanceType: "m5.xlarge" as never, SubnetId: "subnet-b" },
        },
      },
    ],
  };
  it("flattens instances with their type, subnet, zone and market, and the errors", () => {
    const result = readFleetResult(output);
    expect(result.instances).toEqual([
      {
        instanceId: "i-1",
        instanceType: "m6i.xlarge",
        subnetId: "subnet-a",
        availabilityZone: "eu-west-1a",
        market: "spot",
      },
      {
        instanceId: "i-2",
        instanceType: "m6i.xlarge",
        subnetId: "subnet-a",
        availabilityZone: "eu-west-1a",
        market: "spot",
      },
    ]);
    expect(result.errors).toEqual([
      {
        code: "InsufficientInstanceCapacity",
        message: "no capacity",
        instanceType: "m5.xlarge",
        subnetId: "subnet-b",
      },
    ]);
  });
  it("assigns instances to jobs in order and reports the unserved jobs", () => {
    const { instances } = readFleetResult(output);
    const { assigned, unserved, surplus } = assignInstances(["j1", "j2", "j3"], instances);
    expect(assigned.map((a) => [a.job, a.instance.instanceId])).toEqual([
      ["j1", "i-1"],
      ["j2", "i-2"],
    ]);
    expect(unserved).toEqual(["j3"]);
    expect(surplus).toEqual([]);
  });
  it("reports surplus instances when EC2 launched more than there are jobs", () => {
    const { instances } = readFleetResult(output);
    expect(assignInstances(["j1"], instances).surplus.map((i) => i.instanceId)).toEqual(["i-2"]);
  });
});

describe("classifyFleetError(s)", () => {
  it("sorts codes into capacity, throttling, configuration and transient", () => {
    expect(classifyFleetError("InsufficientInstanceCapacity")).toBe("capacity");
    expect(classifyFleetError("MaxSpotInstanceCountExceeded")).toBe("capacity");
    expect(classifyFleetError("SpotMaxPriceTooLow")).toBe("capacity");
    expect(classifyFleetError("UnfulfillableCapacity")).toBe("capacity");
    expect(classifyFleetError("RequestLimitExceeded")).toBe("throttled");
    expect(classifyFleetError("InvalidLaunchTemplateId.NotFound")).toBe("config");
    expect(classifyFleetError("InvalidParameterValue")).toBe("config");
    expect(classifyFleetError("UnauthorizedOperation")).toBe("config");
    expect(classifyFleetError("InternalError")).toBe("transient");
    expect(classifyFleetError(undefined)).toBe("transient");
  });
  it("lets any capacity error win, and calls it configuration only when every error is", () => {
    expect(classifyFleetErrors(["InvalidParameterValue", "InsufficientInstanceCapacity"])).toBe("capacity");
    expect(
      classifyFleetErrors(["InvalidParameterValue", "InvalidLaunchTemplateName.NotFoundException"]),
    ).toBe("config");
    expect(classifyFleetErrors(["InvalidParameterValue", "RequestLimitExceeded"])).toBe("throttled");
    expect(classifyFleetErrors(["InvalidParameterValue", "InternalError"])).toBe("transient");
    expect(classifyFleetErrors([])).toBe("capacity");
  });
});

describe("decideAfterFailure (the spot fallback)", () => {
  const base = { market: "spot" as const, spotFailures: 0, attempts: 1, random: () => 0.5 };
  it("spotPreferred goes on-demand now after spotFailuresBeforeOnDemand capacity failures", () => {
    expect(decideAfterFailure({ ...base, config, failure: "capacity" })).toEqual({
      kind: "on-demand-now",
      countSpotFailure: true,
    });
    const patient = { ...config, spotFailuresBeforeOnDemand: 2 };
    expect(decideAfterFailure({ ...base, config: patient, failure: "capacity" })).toMatchObject({
      kind: "retry-later",
      countSpotFailure: true,
    });
    expect(decideAfterFailure({ ...base, config: patient, failure: "capacity", spotFailures: 1 }).kind).toBe(
      "on-demand-now",
    );
  });
  it("spotOnly never goes on-demand: it retries later, counting the spot failure", () => {
    const step = decideAfterFailure({
      ...base,
      config: { ...config, spotPolicy: "spotOnly" },
      failure: "capacity",
      spotFailures: 9,
    });
    expect(step).toMatchObject({ kind: "retry-later", countSpotFailure: true });
  });
  it("throttling and transient errors retry later without counting a spot failure", () => {
    expect(decideAfterFailure({ ...base, config, failure: "throttled" })).toMatchObject({
      kind: "retry-later",
      countSpotFailure: false,
    });
    expect(decideAfterFailure({ ...base, config, failure: "transient" })).toMatchObject({
      kind: "retry-later",
    });
  });
  it("configuration errors fail the job with the reason", () => {
    const step = decideAfterFailure({
      ...base,
      config,
      failure: "config",
      detail: "InvalidLaunchTemplateId.NotFound",
    });
    expect(step).toEqual({
      kind: "fail",
      reason: "launch configuration error: InvalidLaunchTemplateId.NotFound",
    });
  });
  it("capacity errors on on-demand retry later", () => {
    expect(decideAfterFailure({ ...base, config, market: "on-demand", failure: "capacity" })).toMatchObject({
      kind: "retry-later",
      countSpotFailure: false,
    });
  });
});

describe("backoffSeconds", () => {
  it("grows exponentially up to the cap, jittered between base and the ceiling", () => {
    expect(backoffSeconds(1, { random: () => 1 })).toBe(5);
    expect(backoffSeconds(3, { random: () => 1 })).toBe(20);
    expect(backoffSeconds(3, { random: () => 0 })).toBe(5);
    expect(backoffSeconds(30, { random: () => 1 })).toBe(300);
  });
});

describe("queueTimedOut", () => {
  it("is true only after the queue timeout", () => {
    const now = new Date("2026-01-01T01:00:00Z");
    expect(queueTimedOut("2026-01-01T00:00:01Z", now, 60)).toBe(false);
    expect(queueTimedOut("2026-01-01T00:00:00Z", new Date("2026-01-01T01:00:01Z"), 60)).toBe(true);
  });
});

describe("budgetWaitSeconds", () => {
  const askedAt = Date.parse("2026-01-01T00:00:00Z");
  const noJitter = () => 0;

  it("waits until the budget's next token plus the job's place in line at the budget's rate", () => {
    const budget = { nextAt: askedAt + 10_000, perMinute: 60 };
    expect(budgetWaitSeconds(0, budget, askedAt, noJitter)).toBe(11);
    expect(budgetWaitSeconds(4, budget, askedAt, noJitter)).toBe(15);
  });

  it("adds at most 20 % jitter and stays between 2 s and 5 min", () => {
    const budget = { nextAt: askedAt, perMinute: 60 };
    expect(budgetWaitSeconds(9, budget, askedAt, () => 1)).toBe(12);
    expect(budgetWaitSeconds(0, { nextAt: askedAt, perMinute: 6000 }, askedAt, noJitter)).toBe(2);
    expect(budgetWaitSeconds(0, { nextAt: askedAt + 3_600_000, perMinute: 60 }, askedAt, noJitter)).toBe(300);
  });
});

describe("withRecentClaims", () => {
  it("adds the registered claims the index does not show yet, and counts a job once", () => {
    const indexed = [{ jobId: "a", configName: "c", state: "launched" }];
    const registered = [
      { jobId: "a", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:01Z" },
      { jobId: "b", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:02Z" },
    ];
    expect(withRecentClaims(indexed, registered)).toEqual([indexed[0], registered[1]]);
  });
});

describe("claimsOverLimits", () => {
  const max = (limits: Record<string, number>) => (name: string) => limits[name] ?? 100;
  it("keeps everything within the limits", () => {
    const active = [
      { jobId: "a", configName: "c", state: "running" },
      { jobId: "b", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:01Z" },
    ];
    expect(claimsOverLimits(active, new Set(["b"]), max({ c: 2 }), 10)).toEqual(new Set());
  });
  it("counts a racing launcher's claims before its own, so whoever sees both gives way", () => {
    const active = [
      { jobId: "settled", configName: "c", state: "launched" },
      { jobId: "theirs-1", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:03Z" },
      { jobId: "mine-1", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:01Z" },
      { jobId: "mine-2", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:02Z" },
    ];
    // Limit 3: settled + theirs-1 count first; my oldest claim fits, the next does not, although
    // both of mine are older than theirs (their launcher may have kept theirs before mine showed).
    expect(claimsOverLimits(active, new Set(["mine-1", "mine-2"]), max({ c: 3 }), 100)).toEqual(
      new Set(["mine-2"]),
    );
  });
  it("never lets two racing views add up to more than the limit", () => {
    // A checked before B's claims were visible; B sees everything.
    const aView = [
      { jobId: "a-1", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:02Z" },
      { jobId: "a-2", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:02Z" },
    ];
    const bView = [
      ...aView,
      { jobId: "b-1", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:01Z" },
      { jobId: "b-2", configName: "c", state: "launching", launchingAt: "2026-01-01T00:00:01Z" },
    ];
    const limit = max({ c: 3 });
    const aKeeps = 2 - claimsOverLimits(aView, new Set(["a-1", "a-2"]), limit, 100).size;
    const bKeeps = 2 - claimsOverLimits(bView, new Set(["b-1", "b-2"]), limit, 100).size;
    expect(aKeeps + bKeeps).toBeLessThanOrEqual(3);
    expect(aKeeps).toBe(2);
  });
  it("applies the total limit across configs", () => {
    const active = [
      { jobId: "x", configName: "a", state: "running" },
      { jobId: "y", configName: "b", state: "launching", launchingAt: "2026-01-01T00:00:01Z" },
      { jobId: "z", configName: "a", state: "launching", launchingAt: "2026-01-01T00:00:02Z" },
    ];
    expect(claimsOverLimits(active, new Set(["y", "z"]), max({}), 2)).toEqual(new Set(["z"]));
  });
});

describe("classifyRegistrationError", () => {
  it("retries what time may fix", () => {
    expect(classifyRegistrationError({ status: 502 })).toBe("retry");
    expect(classifyRegistrationError({})).toBe("retry");
    expect(classifyRegistrationError({ status: 429 })).toBe("retry");
    expect(
      classifyRegistrationError({ status: 403, message: "You have exceeded a secondary rate limit" }),
    ).toBe("retry");
    expect(classifyRegistrationError({ status: 403, headers: { "x-ratelimit-remaining": "0" } })).toBe(
      "retry",
    );
  });
  it("fails what it will not: permissions, unknown scope, rejected request", () => {
    expect(
      classifyRegistrationError({ status: 403, message: "Resource not accessible by integration" }),
    ).toBe("fail");
    expect(classifyRegistrationError({ status: 404 })).toBe("fail");
    expect(classifyRegistrationError({ status: 422 })).toBe("fail");
  });
});
