/**
 * Issue 12's webhook fuzzing: the webhook handler, called in-process against the sandbox, with
 * deliveries whose signature is wrong in every way we know of, and with validly signed random and
 * mutated bodies. What must hold: it answers only 2xx or 4xx and never throws; without a valid
 * signature it makes no DynamoDB or SQS call at all (nothing recorded, enqueued or launched); and
 * with one, nothing is written unless a job was recorded, and exactly one launch message goes out
 * per accepted job. Seeded (test/adversarial-counts.ts holds the seed and the counts).
 */
import { createHash, randomUUID } from "node:crypto";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import {
  WEBHOOK_BAD_SIGNATURE_CASES,
  WEBHOOK_BAD_SIGNATURE_MODES,
  WEBHOOK_FUZZ_CASES,
  WEBHOOK_FUZZ_SEED,
  WEBHOOK_HUGE_BODY_CASES,
  WEBHOOK_SIGNED_MUTATED_CASES,
  WEBHOOK_SIGNED_RANDOM_CASES,
} from "./adversarial-counts";
import { signedApiGatewayEvent, type WorkflowJobAction, workflowJobEvent } from "./fixtures/webhooks";
import {
  quietLambdaLogs,
  SECRET,
  signBytes,
  startWebhookSandbox,
  type WebhookSandbox,
} from "./webhook-support";

let world: WebhookSandbox;

beforeAll(async () => {
  world = await startWebhookSandbox("fuzz", { POWERTOOLS_METRICS_DISABLED: "true" });
});

afterAll(async () => {
  await world?.close();
});

beforeEach(async () => {
  await world.reset();
});

quietLambdaLogs(200);

/** Generous: the suite takes seconds, but must not fail on a busy machine. */
const SLOW_MACHINE_MS = 600_000;
const run = (numRuns: number) => ({ seed: WEBHOOK_FUZZ_SEED, numRuns, endOnFailure: true });

it("runs at least 10,000 cases", () => {
  expect(WEBHOOK_FUZZ_CASES).toBeGreaterThanOrEqual(10_000);
});

// ---- Arbitraries -------------------------------------------------------------------------------

const ACTIONS: WorkflowJobAction[] = ["queued", "waiting", "in_progress", "completed"];

/** Strings people do not type: control characters, lone surrogates, bidi overrides, emoji. */
const oddText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc
    .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 20 })
    .map((units) => String.fromCharCode(...units)),
  fc.constantFrom("", " ", "\u0000", "\u202e", "\ufeff", "e\u0301", "👩‍👩‍👧", "ǅ", "İ", "ß", "x".repeat(300)),
);

/** Any JSON value, and deep nests of arrays or objects (a parser's stack, a validator's recursion). */
const deepNest = fc
  .tuple(fc.integer({ min: 1_000, max: 50_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? "[".repeat(depth) + "]".repeat(depth) : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
  );
const anyJsonText = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? "null") },
  { weight: 1, arbitrary: deepNest },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "1e400",
      "-0",
      "123456789012345678901234567890",
      "null",
      "true",
      '"s"',
      "[]",
      "{}",
    ),
  },
);

/** An id of every type JSON can carry, as JSON text. */
const anyIdText = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.constantFrom("0", "-1", "1.5", "1e400", "-0", "9007199254740993", "123456789012345678901234567890"),
  oddText.map((s) => JSON.stringify(s)),
  fc.constantFrom("null", "true", "[]", "{}", '"4242"', "[4242]", '{"id":4242}'),
);

/** A launchable queued delivery of the served owner (so a broken check would write). */
const QUEUED = JSON.stringify(workflowJobEvent("queued", { id: 987_654_321 }));
const launchable = fc
  .integer({ min: 1, max: 2 ** 40 })
  .map((id) => QUEUED.replaceAll("987654321", String(id)));

// ---- Events ------------------------------------------------------------------------------------

type Mode = (typeof WEBHOOK_BAD_SIGNATURE_MODES)[number];
const sign = (text: string | Uint8Array, secret = SECRET) =>
  signBytes(secret, typeof text === "string" ? Buffer.from(text) : text);
const sha1 = (body: string) => createHash("sha1").update(body).digest("hex");

/** A delivery of `body` whose signature is wrong in `mode` (`salt` varies the wrong parts). */
async function badlySigned(body: string, mode: Mode, salt: string): Promise<APIGatewayProxyEventV2> {
  const event = await signedApiGatewayEvent(body, SECRET);
  const headers = event.headers as Record<string, string>;
  const good = headers["x-hub-signature-256"]!;
  const set = (value: string) => (headers["x-hub-signature-256"] = value);
  switch (mode) {
    case "no signature":
      delete headers["x-hub-signature-256"];
      break;
    case "signed with another secret":
      set(sign(body, `${SECRET}${salt}x`));
      break;
    case "SHA-1 only (X-Hub-Signature)":
      delete headers["x-hub-signature-256"];
      headers["x-hub-signature"] = `sha1=${sha1(body)}`;
      break;
    case "SHA-1 in the SHA-256 header":
      set(`sha1=${sha1(body)}`);
      break;
    case "a SHA-1 digest as sha256=":
      set(`sha256=${sha1(body)}`);
      break;
    case "the signature of another body":
      set(sign(`${body}${salt || " "}`));
      break;
    case "upper-case hex":
      set(`sha256=${good.slice(7).toUpperCase()}`);
      if (!/[a-f]/.test(good.slice(7))) set(`sha256=${"A".repeat(64)}`);
      break;
    case "upper-case prefix":
      set(`SHA256=${good.slice(7)}`);
      break;
    case "header name in another case, with a wrong signature":
      delete headers["x-hub-signature-256"];
      headers[salt.length % 2 ? "X-Hub-Signature-256" : "X-HUB-SIGNATURE-256"] = sign(body, `other${salt}`);
      break;
    case "the header repeated (API Gateway joins it with a comma)":
      set(salt.length % 2 ? `${good},${good}` : `${good}, ${sign(body, `other${salt}`)}`);
      break;
    case "the header twice under two cases":
      headers["X-Hub-Signature-256"] = good;
      break;
    case "truncated":
      set(good.slice(0, good.length - 1 - (salt.length % 60)));
      break;
    case "padded":
      set([` ${good}`, `${good} `, `${good}0`, `${good}\n`, `sha256= ${good.slice(7)}`][salt.length % 5]!);
      break;
    case "base64 flag set on a body signed as sent":
      event.isBase64Encoded = true;
      break;
    case "signed over the base64 text": {
      const text = Buffer.from(body).toString("base64");
      Object.assign(event, { body: text, isBase64Encoded: true });
      set(sign(text));
      break;
    }
    case "base64 text sent without the flag":
      event.body = Buffer.from(body).toString("base64");
      break;
    case "an empty body":
      Object.assign(event, { body: salt.length % 2 ? "" : undefined });
      set(sign(""));
      break;
    case "garbage":
      set(salt);
      break;
  }
  return event;
}

/** The oracle: exactly one signature header (any case), equal to GitHub's over the bytes sent. */
function validlySigned(event: APIGatewayProxyEventV2): boolean {
  const values = Object.entries(event.headers ?? {})
    .filter(([name]) => name.toLowerCase() === "x-hub-signature-256")
    .map(([, value]) => value);
  const bytes = Buffer.from(event.body ?? "", event.isBase64Encoded ? "base64" : "utf8");
  return values.length === 1 && bytes.length > 0 && values[0] === sign(bytes);
}

/** A validly signed delivery of `body` (text is sent as UTF-8), with GitHub's headers as given (or missing, or odd). */
async function signed(
  body: string | Uint8Array,
  headers: { event?: string; deliveryId?: string | null; base64?: boolean },
): Promise<APIGatewayProxyEventV2> {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body);
  const event = await signedApiGatewayEvent("{}", SECRET, {
    event: headers.event,
    deliveryId: headers.deliveryId ?? undefined,
    signature: sign(bytes),
  });
  if (headers.deliveryId === null) delete event.headers["x-github-delivery"];
  const base64 = headers.base64 || (typeof body !== "string" && !isUtf8(bytes));
  const text = base64 ? bytes.toString("base64") : typeof body === "string" ? body : bytes.toString("utf8");
  return { ...event, body: text, isBase64Encoded: base64 };
}

const isUtf8 = (bytes: Uint8Array) => Buffer.from(Buffer.from(bytes).toString("utf8")).equals(bytes);

const githubHeaders = fc.record({
  event: fc.oneof(
    { weight: 8, arbitrary: fc.constant("workflow_job") },
    { weight: 1, arbitrary: fc.constantFrom("ping", "push", "") },
    { weight: 1, arbitrary: oddText },
  ),
  deliveryId: fc.oneof(
    { weight: 8, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: oddText },
  ),
  base64: fc.boolean(),
});

// ---- What must hold ----------------------------------------------------------------------------

const dataCallCount = () => world.dataCalls().length;
const messageCount = () => world.sandbox.sqs.messages(world.queueUrl).length;
const statusOf = (response: APIGatewayProxyStructuredResultV2) =>
  (JSON.parse(String(response.body)) as { status: string }).status;

/** Sends a validly signed delivery: 2xx/4xx only; writes and messages only as its outcome says. */
async function expectSafe(event: APIGatewayProxyEventV2): Promise<void> {
  expect(validlySigned(event)).toBe(true);
  const [calls, messages] = [dataCallCount(), messageCount()];
  const response = await world.handler(event);
  expect(response.statusCode).toBeGreaterThanOrEqual(200);
  expect(response.statusCode).toBeLessThan(500);
  const status = statusOf(response);
  if (!["accepted", "recorded", "duplicate"].includes(status)) expect(dataCallCount()).toBe(calls);
  expect(messageCount()).toBe(messages + (status === "accepted" ? 1 : 0));
}

// ---- Properties --------------------------------------------------------------------------------

it(
  "a bad signature, in every mode: 401 (400 oversized), and not one DynamoDB or SQS call",
  async () => {
    const seen = new Set<Mode>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...WEBHOOK_BAD_SIGNATURE_MODES),
        fc.oneof({ weight: 4, arbitrary: launchable }, { weight: 1, arbitrary: anyJsonText }),
        fc.string({ maxLength: 70 }),
        async (mode, body, salt) => {
          seen.add(mode);
          const event = await badlySigned(body, mode, salt);
          expect(validlySigned(event), mode).toBe(false);
          const response = await world.handler(event);
          expect([400, 401], mode).toContain(response.statusCode);
          expect(dataCallCount(), mode).toBe(0);
        },
      ),
      run(WEBHOOK_BAD_SIGNATURE_CASES),
    );
    expect([...seen].sort()).toEqual([...WEBHOOK_BAD_SIGNATURE_MODES].sort());
    expect(await world.jobs()).toEqual([]);
    expect(messageCount()).toBe(0);
  },
  SLOW_MACHINE_MS,
);

it(
  "validly signed random bodies: 2xx/4xx only, nothing written unless a job was",
  async () => {
    // Each field half the time as GitHub sends it for a served job, so some cases get far.
    const orValid = <T>(valid: T, odd: fc.Arbitrary<T>) => fc.oneof(fc.constant(valid), odd);
    const workflowJobShaped = fc
      .record({
        action: fc.oneof(fc.constantFrom(...ACTIONS), oddText),
        id: orValid("4242", anyIdText),
        runId: orValid("77", anyIdText),
        labels: fc.oneof(
          fc.constant(JSON.stringify(["self-hosted", "linux", "x64"])),
          fc.array(oddText, { maxLength: 8 }).map((l) => JSON.stringify(["self-hosted", ...l])),
          anyJsonText,
        ),
        fullName: orValid("Codertocat/Hello-World", oddText),
        htmlUrl: orValid("https://github.com/Codertocat/Hello-World", fc.oneof(fc.webUrl(), oddText)),
        login: orValid("Codertocat", oddText),
        installation: orValid("3456996", anyIdText),
        createdAt: fc.oneof(
          fc.constant(new Date().toISOString()),
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          oddText,
        ),
      })
      .map(
        (f) =>
          `{"action":${JSON.stringify(f.action)},"workflow_job":{"id":${f.id},"run_id":${f.runId},` +
          `"labels":${f.labels},"created_at":${JSON.stringify(f.createdAt)}},"repository":{"full_name":` +
          `${JSON.stringify(f.fullName)},"html_url":${JSON.stringify(f.htmlUrl)},"owner":{"login":` +
          `${JSON.stringify(f.login)}}},"installation":{"id":${f.installation}}}`,
      );
    const nonUtf8 = fc
      .tuple(
        launchable,
        fc.nat(),
        fc.constantFrom([0xff], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8]),
      )
      .map(([text, at, bad]) => {
        const bytes = Buffer.from(text);
        const cut = at % bytes.length;
        return Buffer.concat([bytes.subarray(0, cut), Buffer.from(bad), bytes.subarray(cut)]);
      });
    const body = fc.oneof(
      anyJsonText.map((t) => Buffer.from(t)),
      workflowJobShaped.map((t) => Buffer.from(t)),
      nonUtf8,
      fc.uint8Array({ minLength: 1, maxLength: 200 }),
    );
    await fc.assert(
      fc.asyncProperty(body, githubHeaders, async (bytes, headers) => {
        await expectSafe(await signed(bytes, headers));
      }),
      run(WEBHOOK_SIGNED_RANDOM_CASES),
    );
  },
  SLOW_MACHINE_MS,
);

/** The workflow_job fields intake reads, and others, as paths into the payload. */
const PATHS = [
  ["action"],
  ["workflow_job"],
  ["workflow_job", "id"],
  ["workflow_job", "run_id"],
  ["workflow_job", "run_attempt"],
  ["workflow_job", "labels"],
  ["workflow_job", "labels", 0],
  ["workflow_job", "created_at"],
  ["workflow_job", "runner_id"],
  ["workflow_job", "runner_name"],
  ["workflow_job", "conclusion"],
  ["workflow_job", "steps"],
  ["repository"],
  ["repository", "full_name"],
  ["repository", "html_url"],
  ["repository", "owner"],
  ["repository", "owner", "login"],
  ["installation"],
  ["installation", "id"],
  ["__proto__"],
  ["constructor"],
] as const;

type Mutation =
  | { kind: "set"; path: (typeof PATHS)[number]; value: unknown }
  | { kind: "delete"; path: (typeof PATHS)[number] }
  | { kind: "labels"; labels: readonly string[] }
  | { kind: "raw"; literal: string };

const anyValue: fc.Arbitrary<unknown> = fc.oneof(fc.jsonValue(), oddText);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), path: fc.constantFrom(...PATHS), value: anyValue }),
  fc.record({ kind: fc.constant("delete" as const), path: fc.constantFrom(...PATHS) }),
  fc.record({
    kind: fc.constant("labels" as const),
    labels: fc.oneof(
      // 1,000 labels of 500 characters that route once trimmed: the item-size attack (half a MB).
      {
        weight: 1,
        arbitrary: fc.constant(["self-hosted", ...Array.from({ length: 999 }, () => "linux".padEnd(500))]),
      },
      {
        weight: 4,
        arbitrary: fc.integer({ min: 95, max: 105 }).map((n) => ["self-hosted", ...Array(n - 1).fill("x64")]),
      },
      {
        weight: 10,
        arbitrary: fc.array(fc.constantFrom("linux", "x64", "large", "gpu", " LINUX ", "Self-Hosted"), {
          maxLength: 6,
        }),
      },
      { weight: 5, arbitrary: fc.array(oddText, { maxLength: 5 }) },
    ),
  }),
  fc.record({ kind: fc.constant("raw" as const), literal: anyIdText }),
);

/** Applies `m` to the payload in place; a `raw` mutation is applied to the JSON text (rawText). */
function mutate(payload: Record<string, unknown>, m: Mutation): void {
  if (m.kind === "raw") return;
  if (m.kind === "labels") {
    const job = payload.workflow_job;
    if (typeof job === "object" && job !== null) Object.assign(job, { labels: [...m.labels] });
    return;
  }
  let parent = payload as Record<string | number, unknown>;
  for (const key of m.path.slice(0, -1)) {
    const next = parent[key];
    if (typeof next !== "object" || next === null) return;
    parent = next as Record<string | number, unknown>;
  }
  const last = m.path[m.path.length - 1]!;
  if (m.kind === "delete") delete parent[last];
  else
    Object.defineProperty(parent, last, {
      value: m.value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
}

/** The payload's JSON with the first id replaced by each `raw` mutation's literal (any JSON text). */
const rawText = (payload: object, mutations: Mutation[]) =>
  mutations.reduce(
    (text, m) => (m.kind === "raw" ? text.replace(/"id":\d+/, `"id":${m.literal}`) : text),
    JSON.stringify(payload),
  );

it(
  "validly signed mutations of real workflow_job payloads: 2xx/4xx only, one message per accepted job",
  async () => {
    const mutated = fc
      .record({
        action: fc.constantFrom(...ACTIONS),
        id: fc.integer({ min: 1, max: 50 }), // few ids: duplicates and out-of-order news
        mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }),
        ghes: fc.boolean(),
      })
      .map(({ action, id, mutations, ghes }) => {
        const payload = workflowJobEvent(action, { id, ghes: ghes && id % 10 === 0 });
        for (const m of mutations) mutate(payload, m);
        return rawText(payload, mutations);
      });
    await fc.assert(
      fc.asyncProperty(mutated, githubHeaders, async (text, headers) => {
        await expectSafe(await signed(text, { ...headers, event: "workflow_job" }));
      }),
      run(WEBHOOK_SIGNED_MUTATED_CASES),
    );
    // Every job recorded is one of ours, and each launch message names a recorded job.
    const recorded = await world.jobs();
    expect(recorded.every((job) => job.owner === "Codertocat" && job.githubHost === "github.com")).toBe(true);
    const launched = world.sandbox.sqs
      .messages(world.queueUrl)
      .map((m) => JSON.parse(m.body).jobId as string);
    expect(launched.every((jobId) => recorded.some((job) => job.jobId === jobId))).toBe(true);
  },
  SLOW_MACHINE_MS,
);

it(
  "30 MB bodies, signed or not, raw or base64: 400 before decoding or verifying, nothing written",
  async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom("x", "é", "😀"),
        async (base64, valid, fill) => {
          const padding = fill.repeat(Math.ceil((30 * 1024 * 1024) / Buffer.byteLength(fill)));
          const body = JSON.stringify({ ...workflowJobEvent("queued", { id: 7 }), padding });
          const event = await signedApiGatewayEvent(body, SECRET, {
            base64,
            signature: valid ? undefined : `sha256=${"0".repeat(64)}`,
            deliveryId: randomUUID(),
          });
          const response = await world.handler(event);
          expect(response.statusCode).toBe(400);
          expect(statusOf(response)).toBe("rejected");
        },
      ),
      run(WEBHOOK_HUGE_BODY_CASES),
    );
    expect(world.sandbox.calls).toEqual([]);
  },
  SLOW_MACHINE_MS,
);
