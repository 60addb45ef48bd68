import { join } from "node:path";
import type { AttentionMode, CachePrecision } from "@self-extend/core";
import { dataFolder, readValidatedJson } from "./data-files.js";

export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
  /** Below this log-probability (in both), entries are not compared. */
  readonly logProbabilityFloor?: number;
  /**
   * Greedy tokens may part where the reference's two candidates are closer than the tolerance
   * allows either run to be off (2 atol): set for runtimes whose arithmetic on quantized weights
   * differs by design. Unset, greedy tokens must be identical.
   */
  readonly greedyNearTies?: boolean;
}

export interface ToleranceOverride extends Partial<Tolerance> {
  readonly backend?: string;
  readonly cachePrecision?: CachePrecision;
  readonly mode?: AttentionMode;
  /** A model id of the suite (`tiny:<name>`, `demo`, `stories260K`, `user`). */
  readonly model?: string;
  /** An adapter's own check outside the suite's cases; matches only queries naming it. */
  readonly check?: string;
  /**
   * A ggml weight type (`Q4_K`, `Q6_K`, ...) of the model's matrices; matches a model holding
   * matrices of that type.
   */
  readonly weightType?: string;
  /** A feed-forward activation (`gelu-tanh`); matches a model using it. */
  readonly activation?: string;
  readonly reason: string;
}

export interface ToleranceTable {
  readonly default: Tolerance;
  readonly overrides?: readonly ToleranceOverride[];
}

export function loadTolerances(path = join(dataFolder, "tolerances.json")): ToleranceTable {
  return readValidatedJson<ToleranceTable>(path, "tolerances.schema.json");
}

/** Adds an adapter's own tolerance file (shipped beside the adapter) to a table. */
export function mergeTolerances(
  table: ToleranceTable,
  extra: ToleranceTable | undefined,
  backend: string,
): ToleranceTable {
  if (extra === undefined) return table;
  const scoped = [
    { ...extra.default, backend, reason: `${backend}'s default tolerance` },
    ...(extra.overrides ?? []).map((override) => ({ ...override, backend: override.backend ?? backend })),
  ];
  return { default: table.default, overrides: [...(table.overrides ?? []), ...scoped] };
}

/**
 * An adapter's tolerance for one query: its own table (in the suite's schema) merged over the
 * suite's, resolved for its backend name. What an adapter's own tests call.
 */
export function adapterTolerance(
  adapterTable: ToleranceTable,
  query: ToleranceQuery,
  suiteTable: ToleranceTable = loadTolerances(),
): Tolerance {
  return resolveTolerance(mergeTolerances(suiteTable, adapterTable, query.backend), query);
}

export interface ToleranceQuery {
  readonly backend: string;
  readonly cachePrecision?: CachePrecision;
  readonly mode?: AttentionMode;
  readonly model?: string;
  readonly check?: string;
  readonly weightType?: string;
  readonly activation?: string;
}

/**
 * The tolerance for a run on a model holding matrices of these weight types and using this
 * feed-forward activation: each is resolved on its own and the loosest wins, since a model is as
 * far off as its least precise arithmetic. Without them (or where no override names them) it is
 * the plain query's tolerance.
 */
export function resolveModelTolerance(
  table: ToleranceTable,
  query: ToleranceQuery,
  weightTypes: readonly string[] = [],
  activation?: string,
): Tolerance {
  let loosest = resolveTolerance(table, query);
  const candidates: ToleranceQuery[] = [
    ...weightTypes.map((weightType) => ({ ...query, weightType })),
    ...(activation === undefined ? [] : [{ ...query, activation }]),
  ];
  for (const candidateQuery of candidates) {
    const candidate = resolveTolerance(table, candidateQuery);
    if (candidate.atol > loosest.atol) loosest = candidate;
  }
  return loosest;
}

/**
 * The tolerance for a backend run: the most specific override that matches (more matching fields
 * win; later entries win ties), falling back to the default.
 */
export function resolveTolerance(table: ToleranceTable, query: ToleranceQuery): Tolerance {
  let best: { tolerance: Tolerance; specificity: number } = { tolerance: table.default, specificity: -1 };
  for (const override of table.overrides ?? []) {
    let specificity = 0;
    let matches = true;
    for (const field of [
      "backend",
      "cachePrecision",
      "mode",
      "model",
      "check",
      "weightType",
      "activation",
    ] as const) {
      if (override[field] === undefined) continue;
      if (override[field] !== query[field]) matches = false;
      else specificity += 1;
    }
    if (matches && specificity >= best.specificity) {
      best = {
        tolerance: {
          atol: override.atol ?? table.default.atol,
          rtol: override.rtol ?? table.default.rtol,
          ...((override.logProbabilityFloor ?? table.default.logProbabilityFloor) !== undefined
            ? { logProbabilityFloor: override.logProbabilityFloor ?? table.default.logProbabilityFloor }
            : {}),
          ...(override.greedyNearTies === true ? { greedyNearTies: true } : {}),
        },
        specificity,
      };
    }
  }
  return best.tolerance;
}
