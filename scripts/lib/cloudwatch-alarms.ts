/**
 * The stack's CloudWatch alarms, read with DescribeAlarms over CloudWatch's JSON protocol (awsJson1_0,
 * `GraniteServiceVersion20100801`, query-compatible errors: what @aws-sdk/client-cloudwatch sends), by
 * the Lambdas' JSON client (lambda/adapters/aws-json.ts), so the tools need no CloudWatch SDK client.
 */
import { jsonService } from "../../lambda/adapters/aws-json";

export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";

interface AlarmOutput {
  AlarmName?: string;
  StateValue?: AlarmState;
  StateReason?: string;
  /** Epoch seconds (the JSON protocol's timestamps). */
  StateUpdatedTimestamp?: number;
}

interface DescribeAlarmsInput {
  AlarmNamePrefix?: string;
  AlarmTypes?: ("MetricAlarm" | "CompositeAlarm")[];
  StateValue?: AlarmState;
  MaxRecords?: number;
  NextToken?: string;
}

interface DescribeAlarmsOutput {
  MetricAlarms?: AlarmOutput[];
  CompositeAlarms?: AlarmOutput[];
  NextToken?: string;
}

const cloudwatch = jsonService<{ DescribeAlarms: [DescribeAlarmsInput, DescribeAlarmsOutput] }>({
  // SigV4 signs CloudWatch as "monitoring", its endpoint's name too (monitoring.REGION.amazonaws.com).
  signingName: "monitoring",
  targetPrefix: "GraniteServiceVersion20100801",
  jsonVersion: "1.0",
  headers: { "x-amzn-query-mode": "true" },
});

export interface Alarm {
  name: string;
  state: AlarmState;
  reason: string;
  /** ISO time of the last state change. */
  since?: string;
}

/**
 * Every metric and composite alarm whose name starts with `prefix`. The JSON client takes the
 * endpoint override from AWS_ENDPOINT_URL_MONITORING (its signing name); the SDK's own variable for
 * CloudWatch is AWS_ENDPOINT_URL_CLOUDWATCH, so that one is honoured too.
 */
export async function describeAlarms(
  prefix: string,
  env: Record<string, string | undefined> = process.env,
): Promise<Alarm[]> {
  if (env.AWS_ENDPOINT_URL_CLOUDWATCH && !env.AWS_ENDPOINT_URL_MONITORING)
    env.AWS_ENDPOINT_URL_MONITORING = env.AWS_ENDPOINT_URL_CLOUDWATCH;
  const alarms: Alarm[] = [];
  let next: string | undefined;
  do {
    const page = await cloudwatch("DescribeAlarms", {
      AlarmNamePrefix: prefix,
      AlarmTypes: ["MetricAlarm", "CompositeAlarm"],
      MaxRecords: 100,
      NextToken: next,
    });
    for (const a of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
      alarms.push({
        name: a.AlarmName ?? "?",
        state: a.StateValue ?? "INSUFFICIENT_DATA",
        reason: a.StateReason ?? "",
        ...(a.StateUpdatedTimestamp ? { since: new Date(a.StateUpdatedTimestamp * 1000).toISOString() } : {}),
      });
    }
    next = page.NextToken;
  } while (next);
  return alarms;
}
