/** IAM policy documents as data, so components declare statements and tests read them back. */
import * as pulumi from "@pulumi/pulumi";

export interface PolicyStatement {
  Sid: string;
  Effect?: "Allow" | "Deny";
  Action: string[];
  /** ARNs, or a list known only at deploy time (the runner subnets). */
  Resource: pulumi.Input<string>[] | pulumi.Output<string[]>;
  Condition?: Record<string, Record<string, pulumi.Input<string | pulumi.Input<string>[]>>>;
  /**
   * Why the statement exists and why it is not narrower (what AWS does not offer). Not sent to AWS:
   * the IAM table in docs/reliability-and-security.md is generated from it.
   */
  why: string;
}

/**
 * The `why` of every statement (by Sid) and managed policy (by name) the program declared, so the
 * docs' IAM table can be generated from a program run. One Sid means one thing in every role.
 */
export const declaredReasons = new Map<string, string>();

export function recordReason(key: string, why: string): void {
  const known = declaredReasons.get(key);
  if (known !== undefined && known !== why)
    throw new Error(`IAM ${key} is declared with two different reasons`);
  declaredReasons.set(key, why);
}

export function policyDocument(statements: PolicyStatement[]): pulumi.Output<string> {
  for (const s of statements) {
    if (s.Action.length === 0 || (Array.isArray(s.Resource) && s.Resource.length === 0))
      throw new Error(`IAM statement ${s.Sid} is empty`);
    recordReason(s.Sid, s.why);
  }
  return pulumi.jsonStringify({
    Version: "2012-10-17",
    Statement: statements.map(({ why: _why, ...s }) => ({ Effect: "Allow", ...s })),
  });
}

/** Trust policy letting an AWS service assume a role. */
export function assumedBy(service: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
  });
}

/**
 * The IAM policy variable `${aws:userid}` (the caller's role id and session name); built by
 * concatenation because it is IAM syntax, not a template placeholder.
 */
export const AWS_USERID = ["$", "{aws:userid}"].join("");
