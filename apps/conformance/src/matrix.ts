import type { ConformanceResult } from "@self-extend/conformance";

function cell(result: ConformanceResult | undefined): string {
  if (result === undefined) return "";
  // Measured-only rows are shown in parentheses: they do not count toward pass/fail.
  if (result.informational === true) return `(${countedCell(result)})`;
  return countedCell(result);
}

function countedCell(result: ConformanceResult): string {
  switch (result.status) {
    case "pass":
      return result.maxAbsLogitDiff !== null ? `pass ${result.maxAbsLogitDiff.toExponential(1)}` : "pass";
    case "fail":
      if (result.firstDivergentToken !== null) return `FAIL @${result.firstDivergentToken}`;
      if (result.maxAbsLogitDiff !== null) return `FAIL ${result.maxAbsLogitDiff.toExponential(1)}`;
      return "FAIL";
    case "deviation":
      if (result.firstDivergentToken !== null) return `deviation @${result.firstDivergentToken}`;
      if (result.maxAbsLogitDiff !== null) return `deviation ${result.maxAbsLogitDiff.toExponential(1)}`;
      return "deviation";
    case "not-available":
      return "n/a";
    case "skipped":
      return "skip";
  }
}

/**
 * Cases down, backends across. Logit cells show the largest |log-probability difference|, greedy
 * failures the first divergent token; reasons for failures and unavailable backends follow.
 */
export function formatMatrix(results: readonly ConformanceResult[]): string {
  const backends = [...new Set(results.map((result) => result.backend))];
  const cases = [...new Set(results.map((result) => result.case))];
  const lookup = new Map(results.map((result) => [`${result.backend}\u0000${result.case}`, result]));
  const rows = cases.map((name) => [
    name,
    ...backends.map((backend) => cell(lookup.get(`${backend}\u0000${name}`))),
  ]);
  const header = ["case", ...backends];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((text, column) => text.padEnd(widths[column]))
      .join("  ")
      .trimEnd();
  const output = [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)];

  const notes = new Map<string, string>();
  for (const result of results) {
    if (result.status === "fail" && result.informational !== true)
      notes.set(`${result.backend} ${result.case}`, `FAIL ${result.reason ?? ""}`);
  }
  for (const result of results) {
    if (result.informational === true) {
      const key = `${result.backend} (informational)`;
      if (!notes.has(key)) notes.set(key, result.note ?? "");
    }
  }
  for (const result of results) {
    if (result.status === "not-available" || result.status === "skipped") {
      const key = `${result.backend} (${result.status})`;
      if (!notes.has(key)) notes.set(key, result.reason ?? "");
    }
  }
  if (notes.size > 0) {
    output.push("", ...[...notes].map(([key, note]) => `${key}: ${note}`));
  }
  return `${output.join("\n")}\n`;
}
