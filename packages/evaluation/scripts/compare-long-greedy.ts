/**
 * Compares long greedy runs (the JSON files the adapters' gpu-long-greedy scripts write) with the
 * first one: steps compared, the first step whose tokens differ, the largest log-probability
 * difference up to it, and the first run's smallest top-two margin over those steps. Exit status 1
 * when any run's tokens differ from the first's.
 *
 *   node compare-long-greedy.mjs <first.json> <other.json>...
 */
import { readFileSync } from "node:fs";
import { compareGreedyRuns, type GreedyStep } from "../src/index.js";

interface RunFile {
  readonly label: string;
  readonly steps: readonly GreedyStep[];
  readonly contextSize: number;
  readonly selfExtend: { readonly groupSize: number; readonly neighborWindow: number };
  readonly prefillSeconds?: number;
  readonly decodeSeconds?: number;
}

const paths = process.argv.slice(2);
if (paths.length < 2) {
  console.error("usage: compare-long-greedy <first.json> <other.json>...");
  process.exit(2);
}
function readRun(path: string): RunFile {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as RunFile;
  } catch (error) {
    console.error(`compare-long-greedy: ${path} cannot be read as a run file (${(error as Error).message})`);
    return process.exit(2);
  }
}
const runs = paths.map(readRun);
const [first, ...others] = runs;
let differ = false;
console.log(
  "run | context | G | W | steps compared | first difference | largest log-prob. difference | smallest margin",
);
for (const run of others) {
  const comparison = compareGreedyRuns(first.steps, run.steps);
  differ ||= comparison.firstDifference !== undefined;
  console.log(
    [
      `${run.label} vs ${first.label}`,
      run.contextSize,
      run.selfExtend.groupSize,
      run.selfExtend.neighborWindow,
      comparison.compared,
      comparison.firstDifference ?? "none",
      comparison.largestLogProbabilityDifference.toExponential(2),
      comparison.smallestMargin.toFixed(3),
    ].join(" | "),
  );
}
process.exit(differ ? 1 : 0);
