/** One row of numbers per line: diffs stay readable and files stay small. */
export function serializeGolden(content: unknown): string {
  const text = JSON.stringify(content, null, 1);
  // Collapse arrays of plain numbers onto one line.
  return `${text.replace(/\[\s+(-?[\d.e+-]+(?:,\s+-?[\d.e+-]+)*)\s+\]/g, (_match, inner: string) => `[${inner.replace(/,\s+/g, ",")}]`)}\n`;
}
