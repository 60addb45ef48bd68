/**
 * Values read from a model file, shortened for error messages: a corrupt or hostile file can hold
 * a key, string or array of many megabytes, and an error message must stay one readable line.
 */
const longestQuoted = 60;
const longestList = 8;

/** A string JSON-quoted, cut after 60 characters with its full length given. */
export function quoteForMessage(value: string): string {
  if (value.length <= longestQuoted) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, longestQuoted))}... (${value.length} characters)`;
}

/** Any metadata value, shortened: strings quoted, arrays by their first few items and length. */
export function valueForMessage(value: unknown): string {
  if (typeof value === "string") return quoteForMessage(value);
  if (typeof value === "bigint" || typeof value === "number" || typeof value === "boolean")
    return String(value);
  if (value === undefined) return "undefined";
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const items = Array.from((value as unknown as ArrayLike<unknown>) ?? [])
      .slice(0, longestList)
      .map(valueForMessage);
    const length = (value as unknown as ArrayLike<unknown>).length;
    return `[${items.join(", ")}${length > longestList ? `, ... (${length} items)` : ""}]`;
  }
  return typeof value;
}

/** Numbers listed for a message, the first few and a count. */
export function listForMessage(values: readonly (number | bigint)[]): string {
  return values.length <= longestList
    ? values.join(", ")
    : `${values.slice(0, longestList).join(", ")}, ... (${values.length} values)`;
}
