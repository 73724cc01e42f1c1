/**
 * SSM Parameter Store over its JSON protocol (awsJson1_1, `X-Amz-Target: AmazonSSM.<Op>`): the
 * parameter operations the stack uses, with versions, SecureString values that stay opaque unless
 * asked WithDecryption, path listing with pagination, and AWS's error names.
 */
import { createHash } from "node:crypto";
import type { FaultError, Faults } from "./faults";
import { ACCOUNT_ID, ApiError, type Clock, type LocalServer, listen } from "./http";
import { check, jsonRpcHandler } from "./json-rpc";

export type ParameterType = "String" | "StringList" | "SecureString";

interface Parameter {
  name: string;
  type: ParameterType;
  value: string;
  version: number;
  modifiedAt: number;
  description?: string;
  keyId?: string;
}

const STATUS: Record<string, number> = { InternalServerError: 500 };
const THROTTLE: FaultError = { code: "ThrottlingException", message: "Rate exceeded", status: 400 };

/** GetParameters and DeleteParameters take 1 to 10 names. */
function checkNames(names: unknown): void {
  check(Array.isArray(names) && names.length >= 1 && names.length <= 10, "Names must hold 1 to 10 names.");
}

export interface SsmFakeOptions {
  faults: Faults;
  clock: Clock;
  region: string;
}

export type SsmFake = Awaited<ReturnType<typeof startSsmFake>>;

export async function startSsmFake({ faults, clock, region }: SsmFakeOptions) {
  // Kept sorted by name on read; the stack holds tens of parameters, not thousands.
  const parameters = new Map<string, Parameter>();

  const validName = (name: unknown): string => {
    check(
      typeof name === "string" && name.length > 0 && name.length <= 2048,
      "Parameter name must not be empty.",
    );
    check(
      !/^\/?(aws|ssm)/i.test(name),
      'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive).',
    );
    check(!name.includes("/") || name.startsWith("/"), "Parameter name must be a fully qualified name.");
    return name;
  };

  const find = (name: unknown): Parameter => {
    const parameter = typeof name === "string" ? parameters.get(name) : undefined;
    if (!parameter) throw new ApiError("ParameterNotFound", "");
    return parameter;
  };

  const arnOf = (name: string) =>
    `arn:aws:ssm:${region}:${ACCOUNT_ID}:parameter${name.startsWith("/") ? "" : "/"}${name}`;

  /** A SecureString read without decryption returns ciphertext: opaque, stable per version. */
  const ciphertext = (p: Parameter) =>
    Buffer.concat([
      Buffer.from([1, 2, 2, 0]),
      createHash("sha256").update(`${p.name}#${p.version}#${p.value}`).digest(),
    ]).toString("base64");

  const wire = (p: Parameter, withDecryption: boolean) => ({
    Name: p.name,
    Type: p.type,
    Value: p.type === "SecureString" && !withDecryption ? ciphertext(p) : p.value,
    Version: p.version,
    LastModifiedDate: p.modifiedAt / 1000,
    ARN: arnOf(p.name),
    DataType: "text",
  });

  const put = (input: {
    Name: string;
    Value: string;
    Type?: ParameterType;
    Overwrite?: boolean;
    Description?: string;
    KeyId?: string;
  }) => {
    const name = validName(input.Name);
    check(
      typeof input.Value === "string" && input.Value.length > 0,
      "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
    check(
      Buffer.byteLength(input.Value) <= 4096,
      "Standard tier parameters support a maximum parameter value of 4096 characters.",
    );
    check(
      input.Type === undefined || ["String", "StringList", "SecureString"].includes(input.Type),
      `Invalid type ${input.Type}`,
    );
    const existing = parameters.get(name);
    if (existing && !input.Overwrite) {
      throw new ApiError(
        "ParameterAlreadyExists",
        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
      );
    }
    if (!existing) check(input.Type, "A parameter type is required when you create a parameter.");
    const parameter: Parameter = {
      name,
      type: input.Type ?? existing!.type,
      value: input.Value,
      version: (existing?.version ?? 0) + 1,
      modifiedAt: clock.now(),
      description: input.Description ?? existing?.description,
      keyId: input.KeyId ?? existing?.keyId,
    };
    parameters.set(name, parameter);
    return { Version: parameter.version, Tier: "Standard" };
  };

  const operations = {
    GetParameter: (p: { Name: string; WithDecryption?: boolean }) => {
      // `name:version` selects a version; only the latest is kept, so only it can be named.
      const [name, version] = String(p.Name ?? "").split(/:(?=\d+$)/);
      const parameter = find(name);
      if (version !== undefined && Number(version) !== parameter.version) {
        throw new ApiError(
          "ParameterVersionNotFound",
          `Systems Manager could not find version ${version} of ${name}.`,
        );
      }
      return { Parameter: wire(parameter, !!p.WithDecryption) };
    },
    GetParameters: (p: { Names: string[]; WithDecryption?: boolean }) => {
      checkNames(p.Names);
      const found = p.Names.filter((n) => parameters.has(n));
      return {
        Parameters: found.map((n) => wire(parameters.get(n)!, !!p.WithDecryption)),
        InvalidParameters: p.Names.filter((n) => !parameters.has(n)),
      };
    },
    GetParametersByPath: (p: {
      Path: string;
      Recursive?: boolean;
      WithDecryption?: boolean;
      MaxResults?: number;
      NextToken?: string;
    }) => {
      check(
        typeof p.Path === "string" && p.Path.startsWith("/"),
        'The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".',
      );
      const max = p.MaxResults ?? 10;
      check(Number.isInteger(max) && max >= 1 && max <= 10, "MaxResults must be between 1 and 10.");
      const prefix = p.Path.endsWith("/") ? p.Path : `${p.Path}/`;
      const names = [...parameters.keys()]
        .filter((n) => n.startsWith(prefix) && (p.Recursive || !n.slice(prefix.length).includes("/")))
        .sort();
      let start = 0;
      if (p.NextToken) {
        start = Number(Buffer.from(p.NextToken, "base64").toString("utf8"));
        if (!Number.isInteger(start) || start < 0)
          throw new ApiError("InvalidNextToken", "The specified token isn't valid.");
      }
      const page = names.slice(start, start + max);
      const next =
        start + max < names.length ? Buffer.from(String(start + max)).toString("base64") : undefined;
      return {
        Parameters: page.map((n) => wire(parameters.get(n)!, !!p.WithDecryption)),
        ...(next ? { NextToken: next } : {}),
      };
    },
    PutParameter: put,
    DeleteParameter: (p: { Name: string }) => {
      parameters.delete(find(p.Name).name);
      return {};
    },
    DeleteParameters: (p: { Names: string[] }) => {
      checkNames(p.Names);
      const deleted = p.Names.filter((n) => parameters.delete(n));
      return { DeletedParameters: deleted, InvalidParameters: p.Names.filter((n) => !deleted.includes(n)) };
    },
  };

  const server: LocalServer = await listen(
    jsonRpcHandler({
      service: "ssm",
      targetPrefix: "AmazonSSM",
      contentType: "application/x-amz-json-1.1",
      faults,
      operations,
      throttleError: THROTTLE,
      statuses: STATUS,
      isMutating: (operation) => !/^(Get|Describe|List)/.test(operation),
      renderError: (error) => ({ body: { __type: error.code, message: error.message } }),
    }),
  );

  return {
    url: server.url,
    /** Seeds a parameter (creates or overwrites). */
    put(name: string, value: string, options: { type?: ParameterType } = {}): void {
      put({ Name: name, Value: value, Type: options.type ?? "String", Overwrite: true });
    },
    /** The parameter's plain value, or undefined. */
    get(name: string): string | undefined {
      return parameters.get(name)?.value;
    },
    reset(): void {
      parameters.clear();
    },
    close: () => server.close(),
  };
}
