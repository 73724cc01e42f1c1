/**
 * A `workflow_job` payload as the webhook reads it: the fields intake uses, validated and bounded
 * (nothing a signed request holds can make a job item outgrow DynamoDB's limit), and whether the
 * stack serves it (its owner, repository, host and installation). Pure.
 */
import * as z from "zod/mini";

/**
 * What the stack serves (its config), compared with every workflow_job before anything is recorded:
 * a delivery signed with our secret may still come from elsewhere (an App installed on another
 * account, the secret reused by another webhook), and launching for it would run a foreign job.
 */
export interface ServedScope {
  /** github.owner; logins are compared case-insensitively, as GitHub treats them. */
  owner: string;
  /** Repo scope: the repository names (without owner) served; undefined in org scope (all of them). */
  repositories?: readonly string[];
  /** github.url's host: the web host of the payload's repository URL (githubHostOf). */
  host: string;
  /**
   * App mode: the installation served, compared only when known. The stack cannot know it at deploy
   * (the App is installed after), and an App has one installation per account, so the owner and
   * host already tell ours from another account's; the id only pins it further when configured.
   */
  installationId?: number;
}

/**
 * Bounds on a signed request, so no delivery can make a job item outgrow DynamoDB's 400 KB (test:
 * webhook.test.ts computes the largest item they allow): real workflow_job bodies are tens of KB.
 * A longer label than a config may hold (src/config/schema.ts, 100) could never route anyway.
 */
export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_JOB_LABELS = 100;
export const MAX_LABEL_LENGTH = 100;
/** Other request text a job item keeps: GitHub's names are far shorter (a login 39, a repo 100). */
export const MAX_NAME_LENGTH = 256;

// Only the fields intake uses are validated; GitHub adds fields over time and those pass through.
const positiveInt = z.int().check(z.positive());
const name = z.string().check(z.maxLength(MAX_NAME_LENGTH));
const WorkflowJobSchema = z.object({
  action: z.string(),
  workflow_job: z.object({
    id: positiveInt,
    run_id: positiveInt,
    run_attempt: z.optional(positiveInt),
    labels: z.array(z.string().check(z.maxLength(MAX_LABEL_LENGTH))).check(z.maxLength(MAX_JOB_LABELS)),
    created_at: z.optional(name),
    runner_id: z.optional(z.nullable(z.int())),
    runner_name: z.optional(z.nullable(name)),
    conclusion: z.optional(z.nullable(name)),
  }),
  repository: z.object({
    full_name: name.check(z.regex(/^[^/\s]+\/[^/\s]+$/)),
    html_url: z.url({ protocol: /^https?$/ }),
    owner: z.object({ login: name.check(z.minLength(1)) }),
  }),
  installation: z.optional(z.nullable(z.object({ id: positiveInt }))),
});
export type WorkflowJobPayload = z.infer<typeof WorkflowJobSchema>;

/** The payload's fields intake uses, validated, or which are wrong (without their values). */
export function parseWorkflowJob(payload: unknown): { event: WorkflowJobPayload } | { invalid: string } {
  const parsed = WorkflowJobSchema.safeParse(payload);
  return parsed.success ? { event: parsed.data } : { invalid: describe(parsed.error) };
}

/** Why a delivery is not this stack's (in our words: nothing of the request), or undefined. */
export function notServedReason(event: WorkflowJobPayload, served: ServedScope): string | undefined {
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (githubHostOf(event) !== served.host.toLowerCase()) return "another GitHub host";
  const [owner = "", repository = ""] = event.repository.full_name.split("/");
  if (!same(owner, served.owner) || !same(event.repository.owner.login, served.owner)) return "another owner";
  if (served.repositories && !served.repositories.some((name) => same(name, repository)))
    return "a repository this stack does not serve";
  if (served.installationId !== undefined && event.installation?.id !== served.installationId)
    return "another App installation";
  return undefined;
}

/**
 * `github.com`, or the GitHub Enterprise Server host the job came from. The repository's html_url is
 * in every payload and names the web host on both (a GHES payload also has `enterprise`, but so does
 * one from an enterprise account on github.com, so that alone does not tell them apart).
 */
export function githubHostOf(event: Pick<WorkflowJobPayload, "repository">): string {
  return new URL(event.repository.html_url).host.toLowerCase();
}

/** Which fields are wrong, without their values (they come from the request). */
function describe(error: z.core.$ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => {
      const bound = issue.code === "too_big" ? ` (at most ${issue.maximum})` : "";
      return `${issue.path.join(".") || "(root)"} ${issue.code}${bound}`;
    })
    .join("; ");
}
