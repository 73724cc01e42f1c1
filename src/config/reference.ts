/**
 * docs/configuration.md's reference table, generated from the schema's descriptions and defaults (a
 * test keeps the page in sync).
 */
import { configJsonSchema, type JsonSchema } from "./shape";

/** One row of the configuration reference. */
export interface ReferenceRow {
  key: string;
  type: string;
  default: string;
  description: string;
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
  if (s.type === "array" && s.items) return `list of ${typeOf(s.items)}`;
  if (s.type === "object" && s.additionalProperties && typeof s.additionalProperties === "object")
    return "map";
  if (s.type === "integer") return "integer";
  return String(s.type ?? "any");
}

/** Rows of the reference, walked from the schema (its descriptions and defaults). */
export function configReferenceRows(): ReferenceRow[] {
  const root = configJsonSchema();
  const rows: ReferenceRow[] = [];
  const walk = (s: JsonSchema, key: string, required: boolean) => {
    const isObject = s.type === "object" && s.properties;
    const isMap = s.type === "object" && typeof s.additionalProperties === "object";
    let def = "";
    if (s.default !== undefined && !isObject) def = `\`${JSON.stringify(s.default)}\``;
    else if (required) def = "required";
    rows.push({
      key: `\`${key}\``,
      type: isObject ? "object" : typeOf(s),
      default: def,
      description: (s.description ?? "").replace(/\|/g, "\\|"),
    });
    if (isObject) {
      for (const [k, child] of Object.entries(s.properties ?? {}))
        walk(child, `${key}.${k}`, (s.required ?? []).includes(k) && child.default === undefined);
    }
    if (isMap) {
      const item = s.additionalProperties as JsonSchema;
      for (const [k, child] of Object.entries(item.properties ?? {}))
        walk(child, `${key}.<name>.${k}`, (item.required ?? []).includes(k) && child.default === undefined);
    }
  };
  for (const [k, child] of Object.entries(root.properties ?? {}))
    walk(child, k, (root.required ?? []).includes(k) && child.default === undefined);
  return rows;
}

/** docs/configuration.md's reference table (between its markers), generated from the schema. */
export function configReferenceMarkdown(): string {
  // Cells padded to the column's width, so the table reads as a table in the page's source too.
  const rows = [
    ["key", "type", "default", "meaning"],
    ...configReferenceRows().map((r) => [r.key, r.type, r.default, r.description]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(3, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`;
  return [line(rows[0]!), line(widths.map((w) => "-".repeat(w))), ...rows.slice(1).map(line)].join("\n");
}
