/**
 * A deployed stack as `npm run doctor` sees it, for the doctor's tests and the first-deploy path:
 * the webhook Lambda served over HTTP (as API Gateway, payload 2.0, invokes it) and what `pulumi up`
 * leaves in AWS (the webhook secret, label configs, an AMI per architecture, the reconciler's
 * heartbeat, the alarms) and what the reconciler leaves of a stopped pool, seeded into the sandbox.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { type MemberState, moveMember, putWarmingMember } from "../lambda/adapters/pool-members";
import { recordReconcilerHeartbeat } from "../lambda/adapters/reserved-items";
import { TAGS } from "../lambda/core/stack-identity";
import type { Sandbox } from "./sandbox";
import type { InstanceStateName } from "./sandbox/ec2";
import { type LocalServer, listen, readBody } from "./sandbox/http";

export const STACK = "dev";
export const PREFIX = `runner-fleet-${STACK}`;
export const SECRET = "stack-generated-secret-0123456789abcdef";
export const SECRET_PARAM = `/runner-fleet/${STACK}/github/webhook-secret`;
export const LABEL_PATH = `/runner-fleet/${STACK}/label-configs`;
export const AMI_PARAMS = {
  x64: `/runner-fleet/${STACK}/ami/x64`,
  arm64: `/runner-fleet/${STACK}/ami/arm64`,
};
export const LABEL_CONFIGS = {
  "linux-x64": { labels: ["linux", "x64"], instanceTypes: ["m7i.large"], arch: "x64" },
  "linux-arm64-large": { labels: ["linux", "arm64", "large"], instanceTypes: ["m7g.xlarge"], arch: "arm64" },
};

/** The webhook Lambda's settings for this stack (set them before serveWebhook imports it). */
export function webhookSettings(
  jobsTable: string,
  launchQueueUrl: string,
  owner: string,
): Record<string, string> {
  return {
    STACK_NAME: STACK,
    JOBS_TABLE: jobsTable,
    LAUNCH_QUEUE_URL: launchQueueUrl,
    WEBHOOK_SECRET_PARAM: SECRET_PARAM,
    LABEL_ROUTES: JSON.stringify(
      Object.entries(LABEL_CONFIGS).map(([name, c]) => ({ name, labels: c.labels })),
    ),
    GITHUB_OWNER: owner,
    POWERTOOLS_SERVICE_NAME: "webhook",
  };
}

/** The webhook Lambda behind a local HTTP server, as API Gateway (payload 2.0) would invoke it. */
export async function serveWebhook(): Promise<LocalServer> {
  const { handler } = await import("../lambda/webhook");
  return listen(async (req, res) => {
    const body = (await readBody(req)).toString("utf8");
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    const event = { version: "2.0", rawPath: "/webhook", headers, body, isBase64Encoded: false };
    const result = (await handler(
      event as unknown as APIGatewayProxyEventV2,
    )) as APIGatewayProxyStructuredResultV2;
    res.writeHead(result.statusCode ?? 200, { "content-type": "application/json" });
    res.end(result.body ?? "");
  });
}

/** What `pulumi up` leaves in AWS that doctor checks; images built `imageAgeDays` ago. */
export async function seedDeployedStack(
  sandbox: Sandbox,
  jobsTable: string,
  imageAgeDays = 1,
): Promise<void> {
  sandbox.ssm.put(SECRET_PARAM, SECRET, { type: "SecureString" });
  for (const [name, c] of Object.entries(LABEL_CONFIGS))
    sandbox.ssm.put(
      `${LABEL_PATH}/${name}`,
      JSON.stringify({ name, ...c, launchTemplateId: `lt-0${name.length}`, maxRunners: 10 }),
    );
  for (const [arch, parameter] of Object.entries(AMI_PARAMS)) {
    const creationDate = Date.now() - imageAgeDays * 86_400_000;
    const architecture = arch === "x64" ? "x86_64" : "arm64";
    sandbox.ssm.put(
      parameter,
      sandbox.ec2.addImage({ creationDate, architecture, name: `${PREFIX}-${arch}` }),
    );
  }
  await recordReconcilerHeartbeat(
    { ranAt: new Date(Date.now() - 30_000).toISOString(), failed: 0, unreadable: [] },
    jobsTable,
  );
  for (const id of ["running-instances", "dlq-not-empty", "launcher-errors"])
    sandbox.cloudwatch.putAlarm(`${PREFIX}-${id}`);
}

/** A member of a seeded pool: its state, how long ago it was launched, its AMI, its instance's state. */
export interface SeededMember {
  state: MemberState;
  launchedSecondsAgo: number;
  amiId?: string;
  /** Default: running while warming or claimed, stopped when ready or retiring. */
  ec2State?: InstanceStateName;
}

const MEMBER_EC2_STATE: Record<MemberState, InstanceStateName> = {
  warming: "running",
  ready: "stopped",
  claimed: "running",
  retiring: "stopped",
};

/** An instance of `stack` tagged as a member of `config`'s pool (with no item unless seedPool adds it). */
export function addPoolInstance(
  sandbox: Sandbox,
  member: Omit<SeededMember, "state"> & { config: string; stack?: string },
  state: InstanceStateName,
  now = new Date(),
): string {
  return sandbox.ec2.addInstance({
    state,
    imageId: member.amiId,
    launchTime: now.getTime() - member.launchedSecondsAgo * 1000,
    tags: {
      [TAGS.stack]: member.stack ?? STACK,
      [TAGS.config]: member.config,
      [TAGS.poolMember]: member.config,
    },
  });
}

/**
 * `config`'s pool as the reconciler and the launchers leave it: each member's instance, and its item
 * written with the Lambdas' own adapter (POOL_TABLE must name the pool table); ages counted from
 * `now`. Returns the instance ids.
 */
export async function seedPool(
  sandbox: Sandbox,
  config: string,
  members: SeededMember[],
  now = new Date(),
): Promise<string[]> {
  const ids: string[] = [];
  for (const member of members) {
    const instanceId = addPoolInstance(
      sandbox,
      { ...member, config },
      member.ec2State ?? MEMBER_EC2_STATE[member.state],
      now,
    );
    const launchedAt = new Date(now.getTime() - member.launchedSecondsAgo * 1000);
    await putWarmingMember({ config, instanceId, amiId: member.amiId }, launchedAt);
    if (member.state !== "warming")
      await moveMember({ config, instanceId }, ["warming"], member.state, {}, launchedAt);
    ids.push(instanceId);
  }
  return ids;
}
