/**
 * Key schemas of the stack's DynamoDB tables. One definition serves the Pulumi program
 * (src/components/ledger.ts) and the local sandbox (test/sandbox), so the tests run against the same
 * keys and indexes as AWS.
 */

export interface TableIndex {
  name: string;
  hashKey: string;
  rangeKey?: string;
}

export interface TableSchema {
  hashKey: string;
  rangeKey?: string;
  /** Every key attribute of the table and its indexes; all are strings. */
  attributes: string[];
  ttlAttribute: string;
  indexes: TableIndex[];
}

/**
 * The job ledger: one item per GitHub workflow job, keyed by the job id (the idempotency key).
 * - `byState` (state, updatedAt): what the reconciler and the status tools ask ("jobs launching for
 *   more than 2 min"), and how the launcher counts active runners per config without scanning EC2.
 * - `byInstance` (instanceId): sparse; maps an EC2 event or a runner report back to its job.
 */
export const JOBS_TABLE: TableSchema = {
  hashKey: "jobId",
  attributes: ["jobId", "state", "updatedAt", "instanceId"],
  ttlAttribute: "expiresAt",
  indexes: [
    { name: "byState", hashKey: "state", rangeKey: "updatedAt" },
    { name: "byInstance", hashKey: "instanceId" },
  ],
};

/**
 * The JIT config hand-off: one item per instance, keyed by `<runner role unique id>:<instance id>`,
 * which is exactly the `aws:userid` of a request signed with that instance's role credentials, so an
 * IAM condition on `dynamodb:LeadingKeys` lets each instance read (and then strip) only its own item.
 * The instance also reports its progress on the same item (runner started, job started/finished).
 */
export const HANDOFF_TABLE: TableSchema = {
  hashKey: "handoffKey",
  attributes: ["handoffKey"],
  ttlAttribute: "expiresAt",
  indexes: [],
};

/**
 * The stopped pools: one item per pool member, keyed by its label config and instance id, so the
 * launcher finds a config's ready members with one Query and claims one with a conditional write
 * (`state` ready → claimed). lambda/adapters/pool-members.ts reads and writes it; the reconciler fills
 * and rotates it (lambda/reconciler/tend-pools.ts).
 */
export const POOL_TABLE: TableSchema = {
  hashKey: "config",
  rangeKey: "instanceId",
  attributes: ["config", "instanceId"],
  ttlAttribute: "expiresAt",
  indexes: [],
};

/** The hand-off key for an instance; see HANDOFF_TABLE. */
export function handoffKeyFor(runnerRoleId: string, instanceId: string): string {
  return `${runnerRoleId}:${instanceId}`;
}
