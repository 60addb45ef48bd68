import type { specificationVersion } from "@self-extend/core";
import type { ConformanceTier } from "./conformance-case.js";

/**
 * `deviation`: a measured-only (informational) run outside the tolerance it is held to, which is
 * reported but, by design, not a failure.
 */
export type ConformanceStatus = "pass" | "fail" | "deviation" | "not-available" | "skipped";

/**
 * One cell of the matrix. The JSON output of `self-extend conformance --json` is built from these;
 * its documented fields (backend, case, status, maxAbsLogitDiff, firstDivergentToken, reason) are a
 * contract; the rest are additions.
 */
export interface ConformanceResult {
  readonly backend: string;
  /** `<case>` or `<case>@<model>`. */
  readonly case: string;
  readonly status: ConformanceStatus;
  /** Largest |log-probability difference| over every position and vocabulary entry (tier 2). */
  readonly maxAbsLogitDiff: number | null;
  /** Index (among generated tokens) of the first token that differs (tier 3). */
  readonly firstDivergentToken: number | null;
  readonly reason: string | null;
  readonly tier: ConformanceTier;
  readonly model: string | null;
  /** `reference`, `golden`, or the other backend of a cross-adapter comparison. */
  readonly comparedWith: string;
  readonly selfExtend: { readonly groupSize: number; readonly neighborWindow: number } | null;
  /** Largest |difference| per prompt position (tier 2), for plots. */
  readonly deviationByPosition?: readonly number[];
  /**
   * Set on rows of a measured-only run (a documented, bounded deviation such as llama.cpp's
   * fast-prefill): `status` is `pass` within the mode's tolerance and `deviation` outside it, and
   * the row is counted under `summary.informational`, not as passed or failed. A measured-only run
   * that throws is an ordinary failure and carries no `informational` flag.
   */
  readonly informational?: true;
  /** What the measured-only run is and what it is expected to deviate by. */
  readonly note?: string;
  /** The ggml types of the model's matrices, which picked the tolerance (model rows). */
  readonly weightTypes?: readonly string[];
  /** The tolerance the row was held to (model rows; for a pair, the two runtimes' summed). */
  readonly tolerance?: {
    readonly atol: number;
    readonly rtol: number;
    readonly logProbabilityFloor?: number;
    readonly greedyNearTies?: boolean;
  };
}

export interface ConformanceSummary {
  readonly passed: number;
  readonly failed: number;
  readonly notAvailable: number;
  readonly skipped: number;
  /** Rows of measured-only runs, whatever their status (not in passed or failed). */
  readonly informational: number;
}

export interface ConformanceReport {
  readonly specVersion: typeof specificationVersion;
  readonly results: readonly ConformanceResult[];
  readonly summary: ConformanceSummary;
}

export function summarize(results: readonly ConformanceResult[]): ConformanceSummary {
  const counted = results.filter((result) => result.informational !== true);
  const count = (status: ConformanceStatus) => counted.filter((result) => result.status === status).length;
  return {
    passed: count("pass"),
    failed: count("fail"),
    notAvailable: count("not-available"),
    skipped: count("skipped"),
    informational: results.length - counted.length,
  };
}

/** The documented `--json` shape (plus additive fields, without the per-position arrays). */
export function toJson(report: ConformanceReport): string {
  return JSON.stringify({
    specVersion: report.specVersion,
    results: report.results.map(({ deviationByPosition: _omitted, ...result }) => result),
    summary: report.summary,
  });
}
