/**
 * CloudWatch alarms over CloudWatch's JSON protocol (awsJson1_0, `X-Amz-Target:
 * GraniteServiceVersion20100801.<Op>`, query-compatible errors in `x-amzn-query-error`), as
 * @aws-sdk/client-cloudwatch speaks it: DescribeAlarms with its filters and pagination, for
 * `npm run doctor`'s "alarms in alarm". Tests seed the alarms the stack would have.
 */
import type { FaultError, Faults } from "./faults";
import { ACCOUNT_ID, type Clock, type LocalServer, listen } from "./http";
import { check, jsonRpcHandler } from "./json-rpc";

export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";
type AlarmType = "MetricAlarm" | "CompositeAlarm";

interface SandboxAlarm {
  name: string;
  type: AlarmType;
  state: AlarmState;
  reason: string;
  updatedAt: number;
}

const THROTTLE: FaultError = { code: "Throttling", message: "Rate exceeded", status: 400 };
const STATES: AlarmState[] = ["OK", "ALARM", "INSUFFICIENT_DATA"];

export interface CloudWatchFakeOptions {
  faults: Faults;
  clock: Clock;
  region: string;
}

export type CloudWatchFake = Awaited<ReturnType<typeof startCloudWatchFake>>;

export async function startCloudWatchFake({ faults, clock, region }: CloudWatchFakeOptions) {
  const alarms = new Map<string, SandboxAlarm>();

  const wire = (a: SandboxAlarm) => ({
    AlarmName: a.name,
    AlarmArn: `arn:aws:cloudwatch:${region}:${ACCOUNT_ID}:alarm:${a.name}`,
    StateValue: a.state,
    StateReason: a.reason,
    // The JSON protocol's timestamps: epoch seconds.
    StateUpdatedTimestamp: a.updatedAt / 1000,
    ActionsEnabled: true,
  });

  const operations = {
    DescribeAlarms: (p: {
      AlarmNames?: string[];
      AlarmNamePrefix?: string;
      AlarmTypes?: AlarmType[];
      StateValue?: AlarmState;
      MaxRecords?: number;
      NextToken?: string;
    }) => {
      check(
        !(p.AlarmNames?.length && p.AlarmNamePrefix),
        "AlarmNames and AlarmNamePrefix cannot be specified together.",
        "InvalidParameterCombination",
      );
      check(
        p.StateValue === undefined || STATES.includes(p.StateValue),
        `Invalid StateValue ${p.StateValue}`,
      );
      const max = p.MaxRecords ?? 50;
      check(Number.isInteger(max) && max >= 1 && max <= 100, "MaxRecords must be between 1 and 100.");
      // Without AlarmTypes, CloudWatch answers metric alarms only.
      const types = p.AlarmTypes?.length ? p.AlarmTypes : ["MetricAlarm"];
      const selected = [...alarms.values()]
        .filter((a) => !p.AlarmNames?.length || p.AlarmNames.includes(a.name))
        .filter((a) => !p.AlarmNamePrefix || a.name.startsWith(p.AlarmNamePrefix))
        .filter((a) => types.includes(a.type) && (!p.StateValue || a.state === p.StateValue))
        .sort((a, b) => a.name.localeCompare(b.name));
      const start = p.NextToken ? Number(Buffer.from(p.NextToken, "base64").toString("utf8")) : 0;
      check(Number.isInteger(start) && start >= 0, "The specified token isn't valid.", "InvalidNextToken");
      const page = selected.slice(start, start + max);
      return {
        MetricAlarms: page.filter((a) => a.type === "MetricAlarm").map(wire),
        CompositeAlarms: page
          .filter((a) => a.type === "CompositeAlarm")
          .map((a) => ({ ...wire(a), AlarmRule: "TRUE" })),
        ...(start + max < selected.length
          ? { NextToken: Buffer.from(String(start + max)).toString("base64") }
          : {}),
      };
    },
  };

  const server: LocalServer = await listen(
    jsonRpcHandler({
      service: "cloudwatch",
      targetPrefix: "GraniteServiceVersion20100801",
      contentType: "application/x-amz-json-1.0",
      faults,
      operations,
      throttleError: THROTTLE,
      statuses: { InternalServiceError: 500 },
      isMutating: (operation) => !/^(Describe|Get|List)/.test(operation),
      renderError: (error) => ({
        body: { __type: error.code, message: error.message },
        headers: { "x-amzn-query-error": `${error.code};${error.status >= 500 ? "Receiver" : "Sender"}` },
      }),
    }),
  );

  return {
    url: server.url,
    /** Creates or replaces an alarm (default: a metric alarm, OK). */
    putAlarm(name: string, options: { state?: AlarmState; reason?: string; type?: AlarmType } = {}): void {
      alarms.set(name, {
        name,
        type: options.type ?? "MetricAlarm",
        state: options.state ?? "OK",
        reason: options.reason ?? "Threshold Crossed: no datapoints were breaching the threshold",
        updatedAt: clock.now(),
      });
    },
    reset(): void {
      alarms.clear();
    },
    close: () => server.close(),
  };
}
