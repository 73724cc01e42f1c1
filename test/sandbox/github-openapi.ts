// GitHub's published OpenAPI description (@octokit/openapi) as the contract of the GitHub fake:
// requests are routed by the spec's own path templates and validated against its parameter and
// body schemas; responses are validated against its response schemas.
//
// The dereferenced descriptions are 60-70 MB of JSON (about 190 MB of heap once parsed), so only
// the operations the fake serves are kept (and cached on disk, see readPaths), loaded lazily once
// per process; their validators are compiled on first use.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";

export type GitHubFlavour = "dotcom" | "ghes";

/** GHES 3.10 is the product minimum (JIT runners); 3.17 is the oldest description @octokit/openapi ships. */
export const GHES_SPEC_VERSION = "3.17";

const SPEC_FILES: Record<GitHubFlavour, string> = {
  dotcom: "api.github.com.deref.json",
  ghes: `ghes-${GHES_SPEC_VERSION}.deref.json`,
};

type Schema = Record<string, unknown>;
type Paths = Record<string, Record<string, unknown>>;

interface SpecParameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema?: Schema;
}

interface SpecOperation {
  operationId: string;
  parameters?: SpecParameter[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}

export interface RoutedOperation {
  operationId: string;
  pathParams: Record<string, string>;
}

interface IndexedOperation {
  operationId: string;
  method: string;
  regex: RegExp;
  paramNames: string[];
  /** Literal segments: a literal beats a parameter (`generate-jitconfig` vs `{runner_id}`). */
  literalSegments: number;
  spec: SpecOperation;
}

export interface Violation {
  operation: string;
  method: string;
  path: string;
  where: "path" | "query" | "body" | "response";
  errors: string[];
}

// One Ajv per purpose: request parameters arrive as strings and are coerced like GitHub does,
// bodies and responses are JSON and must match exactly.
function newAjv(coerceTypes: boolean): Ajv {
  // strict: false because the descriptions carry OpenAPI keywords (nullable is understood by Ajv,
  // example / x-github / readOnly are annotations).
  const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes, validateFormats: true });
  addFormats(ajv);
  // Formats GitHub uses that have no checker: accepted as annotations.
  for (const format of ["timestamp", "repo.nwo"]) ajv.addFormat(format, true);
  return ajv;
}

export class GitHubOpenApi {
  private readonly byMethod = new Map<string, IndexedOperation[]>();
  private readonly byId = new Map<string, IndexedOperation>();
  private readonly paramsAjv = newAjv(true);
  private readonly jsonAjv = newAjv(false);
  private readonly compiled = new Map<string, ValidateFunction | null>();

  constructor(
    readonly flavour: GitHubFlavour,
    operations: IndexedOperation[],
  ) {
    for (const op of operations) {
      const list = this.byMethod.get(op.method) ?? [];
      list.push(op);
      this.byMethod.set(op.method, list);
      this.byId.set(op.operationId, op);
    }
    for (const list of this.byMethod.values()) list.sort((a, b) => b.literalSegments - a.literalSegments);
  }

  route(method: string, path: string): RoutedOperation | undefined {
    for (const op of this.byMethod.get(method.toUpperCase()) ?? []) {
      const match = op.regex.exec(path);
      if (!match) continue;
      const pathParams: Record<string, string> = {};
      op.paramNames.forEach((name, i) => {
        pathParams[name] = decodeURIComponent(match[i + 1]!);
      });
      return { operationId: op.operationId, pathParams };
    }
    return undefined;
  }

  /**
   * Validates (and coerces in place) the path and query parameters of a routed request.
   * Unknown query parameters are ignored, as GitHub ignores them.
   */
  validateParams(operationId: string, where: "path" | "query", values: Record<string, unknown>): string[] {
    const validate = this.validator(`${operationId} ${where}`, () => {
      const params = (this.op(operationId).spec.parameters ?? []).filter((p) => p.in === where);
      const properties: Record<string, Schema> = {};
      const required: string[] = [];
      for (const p of params) {
        properties[p.name] = p.schema ?? {};
        if (p.required) required.push(p.name);
      }
      return { schema: { type: "object", properties, required }, ajv: this.paramsAjv };
    });
    return validate ? check(validate, values) : [];
  }

  /** Validates a request body; `undefined` means no body was sent. */
  validateBody(operationId: string, body: unknown): string[] {
    const requestBody = this.op(operationId).spec.requestBody;
    if (body === undefined) return requestBody?.required ? ["request body is required"] : [];
    const validate = this.validator(`${operationId} body`, () => {
      const schema = requestBody?.content?.["application/json"]?.schema;
      return schema ? { schema, ajv: this.jsonAjv } : undefined;
    });
    // An operation without a body schema accepts an empty JSON object only.
    if (!validate) return isEmptyObject(body) ? [] : ["this operation takes no request body"];
    return check(validate, body);
  }

  /**
   * Validates a response body against the documented schema of that status code. GitHub documents
   * few of its errors (401, 404, 5xx are mostly not), so only an undocumented success is flagged.
   */
  validateResponse(operationId: string, status: number, body: unknown): string[] {
    const responses = this.op(operationId).spec.responses;
    const documented = responses[String(status)];
    if (!documented) return status < 300 ? [`status ${status} is not documented for ${operationId}`] : [];
    const schema = documented.content?.["application/json"]?.schema;
    if (!schema) return body === undefined ? [] : [`status ${status} of ${operationId} has no body`];
    const validate = this.validator(`${operationId} ${status}`, () => ({ schema, ajv: this.jsonAjv }));
    return validate ? check(validate, body) : [];
  }

  private op(operationId: string): IndexedOperation {
    const op = this.byId.get(operationId);
    if (!op) throw new Error(`${operationId} is not in the ${this.flavour} description`);
    return op;
  }

  private validator(key: string, build: () => { schema: Schema; ajv: Ajv } | undefined) {
    if (!this.compiled.has(key)) {
      const built = build();
      this.compiled.set(key, built ? built.ajv.compile(toJsonSchema(built.schema) as Schema) : null);
    }
    return this.compiled.get(key) ?? undefined;
  }
}

/**
 * OpenAPI 3.0 schema objects to JSON Schema: `nullable: true` becomes a `null` type (Ajv only
 * understands `nullable` next to `type`, and GitHub also puts it on anyOf/allOf schemas).
 */
function toJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (typeof schema !== "object" || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    // Annotations are dropped: examples can be large and are not validated.
    if (key === "example" || key === "examples" || key === "description") continue;
    // `properties` maps names to schemas: a property may itself be called "nullable" or "example".
    out[key] =
      key === "properties" && typeof value === "object" && value !== null
        ? Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, toJsonSchema(sub)]))
        : toJsonSchema(value);
  }
  if (out.nullable !== true) return out;
  delete out.nullable;
  if (typeof out.type === "string") {
    out.type = [out.type, "null"];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  return { anyOf: [out, { type: "null" }] };
}

function check(validate: ValidateFunction, data: unknown): string[] {
  return validate(data) ? [] : (validate.errors ?? []).map(formatError);
}

function formatError(e: ErrorObject): string {
  const at = e.instancePath || "(root)";
  const extra =
    e.keyword === "enum"
      ? ` (${JSON.stringify((e.params as { allowedValues: unknown }).allowedValues)})`
      : "";
  return `${at} ${e.message ?? e.keyword}${extra}`;
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && Object.keys(value).length === 0;
}

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

/** `paths` holds only the operations to serve (see pickPaths). */
function indexOperations(paths: Paths) {
  const operations: IndexedOperation[] = [];
  for (const [template, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const spec = item[method] as SpecOperation | undefined;
      if (!spec) continue;
      const paramNames: string[] = [];
      const segments = template.split("/").slice(1);
      const pattern = segments
        .map((segment) => {
          const param = /^\{(.+)\}$/.exec(segment);
          if (!param) return escapeRegex(segment);
          paramNames.push(param[1]!);
          return "([^/]+)";
        })
        .join("/");
      operations.push({
        operationId: spec.operationId,
        method: method.toUpperCase(),
        regex: new RegExp(`^/${pattern}/?$`),
        paramNames,
        literalSegments: segments.length - paramNames.length,
        spec,
      });
    }
  }
  return operations;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const loading = new Map<string, Promise<GitHubOpenApi>>();

/** The paths of the description that hold the given operations (same shape as `paths`). */
function pickPaths(paths: Paths, keep: Set<string>): Paths {
  const picked: Paths = {};
  for (const [template, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const op = item[method] as SpecOperation | undefined;
      if (op && keep.has(op.operationId)) picked[template] = { ...picked[template], [method]: op };
    }
  }
  return picked;
}

/**
 * Parsing a whole description takes about a second of CPU; the few operations the fake serves are
 * cached under node_modules/.cache, keyed by the description file and the operation list, so only
 * the first test process after an install (or a change of operations) pays for it.
 */
async function readPaths(flavour: GitHubFlavour, operationIds: readonly string[]): Promise<Paths> {
  const require = createRequire(import.meta.url);
  const file = require.resolve(`@octokit/openapi/generated/${SPEC_FILES[flavour]}`);
  const { size, mtimeMs } = await stat(file);
  const keep = [...new Set(operationIds)].sort();
  const digest = createHash("sha256")
    .update(JSON.stringify([file, size, mtimeMs, keep]))
    .digest("hex");
  const cacheDir = join(
    dirname(require.resolve("@octokit/openapi/package.json")),
    "..",
    "..",
    ".cache",
    "runner-fleet",
  );
  const cacheFile = join(cacheDir, `github-openapi-${flavour}-${digest.slice(0, 16)}.json`);
  try {
    return JSON.parse(await readFile(cacheFile, "utf8")) as Paths;
  } catch {
    // Not cached yet (or unreadable): parse the description.
  }
  const description = JSON.parse(await readFile(file, "utf8")) as { paths: Paths };
  const paths = pickPaths(description.paths, new Set(keep));
  try {
    await mkdir(cacheDir, { recursive: true });
    // Write then rename: parallel test workers never read a half-written file.
    const temp = `${cacheFile}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temp, JSON.stringify(paths));
    await rename(temp, cacheFile);
  } catch {
    // A read-only tree only loses the cache.
  }
  return paths;
}

/** The description of one flavour, restricted to the given operations; loaded once per process. */
export function loadGitHubOpenApi(flavour: GitHubFlavour, operationIds: readonly string[]) {
  const key = `${flavour}:${[...operationIds].sort().join(",")}`;
  let pending = loading.get(key);
  if (!pending) {
    pending = readPaths(flavour, operationIds).then(
      (paths) => new GitHubOpenApi(flavour, indexOperations(paths)),
    );
    pending.catch(() => loading.delete(key));
    loading.set(key, pending);
  }
  return pending;
}
