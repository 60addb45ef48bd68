/**
 * Re-renders the plot of a results document written by `self-extend eval ... --out` (for example
 * after a change to the plot code, or to plot a run that was made without --plot):
 *
 *   node --conditions=source --import tsx packages/evaluation/scripts/render-plot.ts results.json plot.svg
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import {
  type EvaluationReport,
  type PasskeyCell,
  type PerplexityCell,
  renderPasskeyHeatmap,
  renderPerplexityPlot,
  writeFileAtomically,
} from "../src/index.js";

const [resultsPath, plotPath] = process.argv.slice(2);
if (resultsPath === undefined || plotPath === undefined) {
  console.error("usage: render-plot.ts <results.json> <plot.svg>");
  process.exit(2);
}
const report = JSON.parse(readFileSync(resultsPath, "utf8")) as EvaluationReport<
  PerplexityCell | PasskeyCell
>;
const { trainedContext } = report.model;
const model = `${basename(report.model.path)} (sha256 ${report.model.sha256.slice(0, 12)}), ${report.backend}`;
const settings = report.settings as Record<string, unknown>;
writeFileAtomically(
  plotPath,
  report.evaluation === "perplexity"
    ? renderPerplexityPlot(report.cells as PerplexityCell[], {
        trainedContext,
        subtitle: `${model}, ${settings.scoredTokens} tokens of ${basename(String(settings.text))}`,
      })
    : renderPasskeyHeatmap(report.cells as PasskeyCell[], {
        trainedContext,
        subtitle: `${model}, ${settings.trials} trials per cell, seed ${settings.seed}`,
      }),
);
console.error(`wrote ${plotPath} (${report.cells.length} cells${report.complete ? "" : ", incomplete run"})`);
