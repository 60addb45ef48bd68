/**
 * A self-contained HTML report: the matrix as a table and, for every logits case, an inline SVG of
 * the largest |log-probability difference| against position, one line per backend (log scale).
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ConformanceReport, type ConformanceResult, toJson } from "@self-extend/conformance";

const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (character) => `&#${character.charCodeAt(0)};`);
}

function deviationPlot(name: string, results: readonly ConformanceResult[]): string {
  const series = results.filter(
    (result) => result.deviationByPosition && result.deviationByPosition.length > 0,
  );
  if (series.length === 0) return "";
  const width = 640;
  const height = 220;
  const margin = { left: 56, right: 12, top: 24, bottom: 32 };
  const floor = 1e-12;
  const values = series.flatMap((result) =>
    result.deviationByPosition!.map((value) => Math.max(value, floor)),
  );
  const top = Math.log10(Math.max(...values));
  const bottom = Math.min(Math.log10(Math.min(...values)), top - 1);
  const length = Math.max(...series.map((result) => result.deviationByPosition!.length));
  const x = (position: number) =>
    margin.left + (position / Math.max(1, length - 1)) * (width - margin.left - margin.right);
  const y = (value: number) =>
    margin.top +
    ((top - Math.log10(Math.max(value, floor))) / (top - bottom)) * (height - margin.top - margin.bottom);
  const lines = series.map((result, index) => {
    const points = result.deviationByPosition!.map(
      (value, position) => `${x(position).toFixed(1)},${y(value).toFixed(1)}`,
    );
    return `<polyline fill="none" stroke="${palette[index % palette.length]}" stroke-width="1.2" points="${points.join(" ")}"/>`;
  });
  const ticks: string[] = [];
  for (let exponent = Math.ceil(bottom); exponent <= Math.floor(top); exponent++) {
    const position = y(10 ** exponent);
    ticks.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${position}" y2="${position}" stroke="#ddd"/>` +
        `<text x="${margin.left - 6}" y="${position + 4}" text-anchor="end" font-size="10">1e${exponent}</text>`,
    );
  }
  const legend = series.map(
    (result, index) =>
      `<text x="${margin.left + 8 + index * 150}" y="14" font-size="11" fill="${palette[index % palette.length]}">${escapeHtml(result.backend)}</text>`,
  );
  return `<figure><figcaption>${escapeHtml(name)}: largest |log-probability difference| by position</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
${ticks.join("\n")}
<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${height - margin.bottom}" stroke="#333"/>
<line x1="${margin.left}" x2="${width - margin.right}" y1="${height - margin.bottom}" y2="${height - margin.bottom}" stroke="#333"/>
<text x="${width / 2}" y="${height - 6}" text-anchor="middle" font-size="11">position (0 .. ${length - 1})</text>
${lines.join("\n")}
${legend.join("\n")}
</svg></figure>`;
}

export function renderHtmlReport(report: ConformanceReport, commandLine: string): string {
  const backends = [...new Set(report.results.map((result) => result.backend))];
  const cases = [...new Set(report.results.map((result) => result.case))];
  const lookup = new Map(report.results.map((result) => [`${result.backend}\u0000${result.case}`, result]));
  const cellOf = (result: ConformanceResult | undefined) => {
    if (!result) return "<td></td>";
    const detail =
      result.maxAbsLogitDiff !== null
        ? ` ${result.maxAbsLogitDiff.toExponential(2)}`
        : result.firstDivergentToken !== null
          ? ` @${result.firstDivergentToken}`
          : "";
    // Measured-only rows are shown in parentheses, as in the text matrix: they are not counted.
    const label = result.informational === true ? `(${result.status}${detail})` : `${result.status}${detail}`;
    const title = [result.reason, result.note].filter((text) => text).join("; ");
    return `<td class="${result.status}${result.informational === true ? " informational" : ""}" title="${escapeHtml(title)}">${label}</td>`;
  };
  const rows = cases
    .map(
      (name) =>
        `<tr><th>${escapeHtml(name)}</th>${backends.map((backend) => cellOf(lookup.get(`${backend}\u0000${name}`))).join("")}</tr>`,
    )
    .join("\n");
  const plots = cases
    .filter((name) => report.results.some((result) => result.case === name && result.tier === "logits"))
    .map((name) =>
      deviationPlot(
        name,
        report.results.filter((result) => result.case === name),
      ),
    )
    .join("\n");
  const { passed, failed, notAvailable, skipped, informational } = report.summary;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Self-Extend conformance report</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left} .pass{background:#e6f4ea} .fail{background:#fce8e6} .deviation{background:#fef7e0} .informational{font-style:italic}
.not-available,.skipped{background:#f1f3f4;color:#666} figure{margin:16px 0} figcaption{font-size:12px}
</style></head><body>
<h1>Self-Extend conformance (spec ${report.specVersion})</h1>
<p>${passed} passed, ${failed} failed, ${notAvailable} not available, ${skipped} skipped, ${informational} informational (measured, not counted). Command: <code>${escapeHtml(commandLine)}</code></p>
<p>Tier 1 compares position maps with the golden files, tier 2 log-probabilities at every position with the reference
(cells show the largest |difference|), tier 3 greedy tokens (failures show the first divergent token). Cells in parentheses
are measured-only runs: "deviation" there is a documented, bounded departure from the reference, not a failure. Hover a cell for its reason.</p>
<table><tr><th>case</th>${backends.map((backend) => `<th>${escapeHtml(backend)}</th>`).join("")}</tr>
${rows}
</table>
<h2>Logit deviation against position</h2>
${plots || "<p>No logits cases ran.</p>"}
</body></html>
`;
}

/** Writes index.html and conformance.json into `folder`, each through a temporary file and a rename. */
export function writeHtmlReport(folder: string, report: ConformanceReport, commandLine: string): string {
  mkdirSync(folder, { recursive: true });
  const files: [string, string][] = [
    ["index.html", renderHtmlReport(report, commandLine)],
    ["conformance.json", `${toJson(report)}\n`],
  ];
  for (const [name, content] of files) {
    const path = join(folder, name);
    writeFileSync(`${path}.partial`, content);
    renameSync(`${path}.partial`, path);
  }
  return join(folder, "index.html");
}
