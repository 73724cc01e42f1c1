/** IAM policy documents as data, so components declare statements and tests read them back. */
import * as pulumi from "@pulumi/pulumi";

export interface PolicyStatement {
  Sid: string;
  Effect?: "Allow" | "Deny";
  Action: string[];
  Resource: pulumi.Input<string>[];
  Condition?: Record<string, Record<string, pulumi.Input<string | string[]>>>;
}

export function policyDocument(statements: PolicyStatement[]): pulumi.Output<string> {
  for (const s of statements) {
    if (s.Action.length === 0 || s.Resource.length === 0) throw new Error(`IAM statement ${s.Sid} is empty`);
  }
  return pulumi.jsonStringify({
    Version: "2012-10-17",
    Statement: statements.map((s) => ({ Effect: "Allow", ...s })),
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
