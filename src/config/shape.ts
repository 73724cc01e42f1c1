/**
 * The schema seen as JSON Schema (zod's own export of it): what each key expects, walked by path and
 * said in plain words for error messages; the reference table reads the same view.
 */
import { z } from "zod";
import { stackConfigSchema } from "./schema";

export type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  required?: string[];
  anyOf?: JsonSchema[];
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
};

let rootSchema: JsonSchema | undefined;

/** The whole stack config as JSON Schema, input side (defaulted keys are optional). */
export function configJsonSchema(): JsonSchema {
  rootSchema ??= z.toJSONSchema(stackConfigSchema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  return rootSchema;
}

/** The schema of the value at `path` (keys, map names, list indexes), if the schema has that path. */
export function jsonSchemaAt(path: readonly PropertyKey[]): JsonSchema | undefined {
  let schema: JsonSchema | undefined = configJsonSchema();
  for (const key of path) {
    if (!schema) return undefined;
    if (typeof key === "number") schema = schema.items;
    else if (schema.properties) schema = schema.properties[String(key)];
    else schema = typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined;
  }
  return schema;
}

/** "from 1 to 10", "at least 1", "greater than 0 and at most 5", or "" without bounds. */
function range(min: number | undefined, max: number | undefined, exclusiveMin?: number): string {
  if (exclusiveMin !== undefined)
    return `greater than ${exclusiveMin}${max === undefined ? "" : ` and at most ${max}`}`;
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}`;
  if (min !== undefined) return `at least ${min}`;
  return max === undefined ? "" : `at most ${max}`;
}

/** "of 1 to 20 items", "of at least 1 item", or "" without bounds. */
function count(min: number | undefined, max: number | undefined, noun: string): string {
  if (min === undefined && max === undefined) return "";
  const bound = min !== undefined && max !== undefined ? `${min} to ${max}` : range(min, max);
  return `of ${bound} ${noun}${(max ?? min) === 1 ? "" : "s"}`;
}

const joined = (parts: string[], last: string) =>
  parts.length < 2 ? (parts[0] ?? "") : `${parts.slice(0, -1).join(", ")} ${last} ${parts.at(-1)}`;

/** What a value of this schema looks like, in plain words: "a whole number from 1 to 10000". */
export function describeShape(s: JsonSchema | undefined): string {
  if (!s) return "a value the configuration reference describes";
  const words = (...parts: string[]) => parts.filter(Boolean).join(" ");
  if (s.enum)
    return joined(
      s.enum.map((v) => JSON.stringify(v)),
      "or",
    );
  switch (s.type) {
    case "integer":
      return words("a whole number", range(s.minimum, s.maximum, s.exclusiveMinimum));
    case "number":
      return words("a number", range(s.minimum, s.maximum, s.exclusiveMinimum));
    case "boolean":
      return "true or false";
    case "string":
      return words("text", count(s.minLength, s.maxLength, "character"));
    case "array":
      return `${words("a list", count(s.minItems, s.maxItems, "item"))}${s.items ? `, each ${describeShape(s.items)}` : ""}`;
    case "object":
      return s.properties
        ? `a map of settings (${joined(Object.keys(s.properties), "and")})`
        : "a map of names to settings";
    default:
      return "a value the configuration reference describes";
  }
}
