import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

/** A row of `self-extend conformance --json`, as the tests read it. */
export interface ConformanceRow {
  readonly backend: string;
  readonly case: string;
  readonly status: string;
  readonly weightTypes?: string[];
  readonly tolerance?: { atol: number; greedyNearTies?: boolean };
}

/**
 * `self-extend conformance --backend ... --model <model> --case ... --cache <cache> --json` on
 * every given adapter: the exit code and the parsed report.
 */
export async function runConformanceJson(options: {
  readonly adapters: readonly string[];
  readonly model: string;
  readonly cases: readonly string[];
  readonly cache: string;
}): Promise<{ code: number; summary: Record<string, number>; rows: ConformanceRow[] }> {
  const terminal = captureTerminal();
  const code = await runCli(
    [
      "conformance",
      ...options.adapters.flatMap((backend) => ["--backend", backend]),
      "--model",
      options.model,
      ...options.cases.flatMap((name) => ["--case", name]),
      "--cache",
      options.cache,
      "--json",
    ],
    terminal,
  );
  const report = JSON.parse(terminal.stdout);
  return { code, summary: report.summary, rows: report.results };
}
