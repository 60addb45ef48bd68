/**
 * Runs conformance cases on backends and compares them with the reference backend, and every pair
 * of backends with each other. Backends are driven only through the v1 contract.
 */
import {
  generateTokens,
  planSelfExtend,
  relativePositionMap,
  type SelfExtendBackendV1,
  type SelfExtendConfig,
  SelfExtendConfigError,
  type SessionOptionsV1,
  smallestWindowForSlidingWindow,
  specificationVersion,
} from "@self-extend/core";
import { createReferenceBackend } from "@self-extend/reference";
import type { ConformanceVariant } from "./adapter-declaration.js";
import {
  type ConformanceCase,
  generatedTokenCount,
  loadConformanceCases,
  promptTokenCount,
} from "./conformance-case.js";
import {
  type ConformanceModel,
  expandModelIds,
  type ModelLocations,
  prepareModel,
} from "./conformance-models.js";
import { type ConformanceReport, type ConformanceResult, summarize } from "./conformance-result.js";
import { type GoldenPositionMap, loadGoldenPositionMaps } from "./golden-position-maps.js";
import { compareLogProbabilities, firstDivergence, logSoftmaxRows } from "./log-probabilities.js";
import { seededPrompt } from "./prompt.js";
import { findSkip, loadSkipList, type SkipEntry } from "./skip-list.js";
import {
  loadTolerances,
  mergeTolerances,
  resolveModelTolerance,
  type Tolerance,
  type ToleranceTable,
} from "./tolerances.js";

/** A backend and how to open its sessions (mode, cache precision), plus its own tolerance data. */
export interface BackendUnderTest {
  readonly backend: SelfExtendBackendV1;
  /** Shown in results; defaults to the backend's name (use it to tell two modes apart). */
  readonly label?: string;
  readonly sessionOptions?: Pick<SessionOptionsV1, "mode" | "cachePrecision">;
  /** The adapter's own tolerances (its conformance/tolerances.json), merged over the suite's. */
  readonly tolerances?: ToleranceTable;
  /** The adapter's own skips (its conformance/skips.json), added to the suite's. */
  readonly skips?: readonly SkipEntry[];
  /** Set when the adapter could not even be loaded (package missing): reported as not available. */
  readonly unavailableReason?: string;
  /**
   * A run that is measured and reported but does not count toward pass/fail (for example a mode
   * whose deviation is bounded and documented rather than zero). Its rows carry
   * `informational: true` and a `note`, and it takes no part in the cross-adapter comparisons.
   */
  readonly informational?: {
    /** Why the run does not count. */
    readonly why: string;
    /** What to say about a run with this configuration (for example its largest position error). */
    readonly describe?: (config: SelfExtendConfig) => string;
  };
}

export interface ConformanceProgress {
  readonly completed: number;
  readonly total: number;
  readonly backend: string;
  readonly case: string;
}

export interface ConformanceOptions extends ModelLocations {
  readonly cases?: readonly ConformanceCase[];
  /** Run only these case names. */
  readonly caseNames?: readonly string[];
  /** Run only these model ids (after `tiny:*` expansion). */
  readonly modelIds?: readonly string[];
  readonly tolerances?: ToleranceTable;
  readonly skips?: readonly SkipEntry[];
  /** Compare every pair of backends with each other too (default true). */
  readonly crossCompare?: boolean;
  readonly onProgress?: (progress: ConformanceProgress) => void;
  readonly onResult?: (result: ConformanceResult) => void;
  readonly signal?: AbortSignal;
}

interface RunOutput {
  readonly logProbabilities?: Float64Array;
  readonly vocabularySize: number;
  readonly tokens?: number[];
}

interface PlannedRun {
  readonly testCase: ConformanceCase;
  readonly model: ConformanceModel;
  readonly config: SelfExtendConfig;
  readonly prompt: number[];
  readonly generated: number;
  readonly name: string;
}

function configFor(
  testCase: ConformanceCase,
  model: ConformanceModel,
  totalLength: number,
): SelfExtendConfig {
  const setting = testCase.selfExtend ?? "plain";
  if (setting === "plain") return { groupSize: 1, neighborWindow: 1 };
  if (setting === "plan") {
    // A model with local layers gets a W that covers their window where the planner's range allows:
    // every adapter runs that (llama.cpp runs Gemma 2 and 3 only so), and W < S is the explicit cases' job.
    return planSelfExtend({
      trainedContext: model.trainedContext,
      targetContext: totalLength,
      smallestWindow: smallestWindowForSlidingWindow(model.trainedContext, model.slidingWindow),
    }).config;
  }
  return setting;
}

function planRun(testCase: ConformanceCase, model: ConformanceModel): PlannedRun {
  const promptLength = promptTokenCount(testCase, model.trainedContext);
  const generated = testCase.tier === "greedy" ? generatedTokenCount(testCase, model.trainedContext) : 0;
  const config = configFor(testCase, model, promptLength + generated);
  const prompt = seededPrompt(promptLength, model.vocabularySize, testCase.promptSeed ?? 0, {
    bos: model.bosToken,
  });
  return { testCase, model, config, prompt, generated, name: `${testCase.name}@${model.id}` };
}

/**
 * A session the backend refused at creation with a SelfExtendConfigError. By the v1 contract that
 * is a setting the backend cannot honour for this model (llama.cpp: Gemma 2 or 3 with W below its sliding
 * window), declared before any work: reported as not available, with the backend's own reason.
 * The reference accepted the same settings, since it ran first.
 */
class SessionRefused extends Error {}

function isConfigError(error: unknown): boolean {
  return (
    error instanceof SelfExtendConfigError ||
    (error instanceof Error && error.name === "SelfExtendConfigError")
  );
}

async function execute(entry: BackendUnderTest, run: PlannedRun, signal?: AbortSignal): Promise<RunOutput> {
  const path = run.model.backendPaths?.[entry.backend.name] ?? run.model.path;
  const model = await entry.backend.loadModel({ path });
  let session: Awaited<ReturnType<typeof model.createSession>>;
  try {
    session = await model.createSession({
      selfExtend: run.config,
      contextSize: run.prompt.length + run.generated,
      ...entry.sessionOptions,
    });
  } catch (error) {
    await model.dispose();
    if (isConfigError(error)) throw new SessionRefused((error as Error).message);
    throw error;
  }
  try {
    if (run.testCase.tier === "logits") {
      const evaluation = await session.evaluate(run.prompt, { logits: "all", signal });
      return {
        logProbabilities: logSoftmaxRows(evaluation.logits, evaluation.vocabularySize),
        vocabularySize: evaluation.vocabularySize,
      };
    }
    const tokens: number[] = [];
    // Greedy runs to the full length: stop tokens are ordinary tokens here, so that every backend
    // produces the same number of tokens to compare.
    for await (const token of generateTokens(session, run.prompt, { maxTokens: run.generated, signal })) {
      tokens.push(token);
    }
    return { tokens, vocabularySize: model.info.vocabularySize };
  } finally {
    await session.dispose();
    await model.dispose();
  }
}

/** Where a reported map differs from a golden one (null when bit-identical). */
function positionMismatch(actual: Int32Array, expected: GoldenPositionMap): string | null {
  const flat = expected.map.flat();
  const where = `G=${expected.group} W=${expected.window} N=${expected.length}`;
  if (actual.length !== flat.length) return `${where}: ${actual.length} entries, golden ${flat.length}`;
  const index = flat.findIndex((value, position) => actual[position] !== value);
  if (index < 0) return null;
  const row = Math.floor(index / expected.length);
  const column = index % expected.length;
  return `${where}: r(${row}, ${column}) = ${actual[index]}, golden ${flat[index]}`;
}

/**
 * A measured-only row: out of its tolerance it is a documented deviation, not a failure, and says
 * so in its status (a "fail" next to `failed: 0` reads as a contradiction).
 */
function asInformational(row: ConformanceResult, note: string): ConformanceResult {
  return {
    ...row,
    status: row.status === "fail" ? "deviation" : row.status,
    informational: true,
    note,
  };
}

function describeError(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  return message.split("\n")[0];
}

function compareOutputs(
  actual: RunOutput,
  expected: RunOutput,
  tolerance: Tolerance,
): Pick<
  ConformanceResult,
  "status" | "maxAbsLogitDiff" | "firstDivergentToken" | "reason" | "deviationByPosition"
> {
  if (expected.logProbabilities !== undefined) {
    if (
      actual.logProbabilities === undefined ||
      actual.logProbabilities.length !== expected.logProbabilities.length
    ) {
      return {
        status: "fail",
        maxAbsLogitDiff: null,
        firstDivergentToken: null,
        reason: "returned logits of the wrong shape",
      };
    }
    const comparison = compareLogProbabilities(
      actual.logProbabilities,
      expected.logProbabilities,
      expected.vocabularySize,
      tolerance,
    );
    const rows = expected.logProbabilities.length / expected.vocabularySize;
    if (rows > 0 && comparison.informativePositions === 0) {
      // A pass here could not have been a fail: refuse to claim it.
      return {
        status: "fail",
        maxAbsLogitDiff: comparison.largestDifference,
        firstDivergentToken: null,
        reason: `nothing to compare: at all ${rows} positions only the top token's log-probability is above the floor (${tolerance.logProbabilityFloor ?? "none"}), so no difference could show; the model's rows are one-hot (random weights at a real width?)`,
      };
    }
    const failed = comparison.failingPositions.length > 0;
    return {
      status: failed ? "fail" : "pass",
      maxAbsLogitDiff: comparison.largestDifference,
      firstDivergentToken: null,
      reason: failed
        ? `log-probabilities differ by up to ${comparison.largestDifference.toExponential(3)} (atol ${tolerance.atol}, rtol ${tolerance.rtol}) at ${comparison.failingPositions.length} positions, first ${comparison.failingPositions[0]}; argmax differs at ${comparison.argmaxMismatches.length}`
        : null,
      deviationByPosition: Array.from(comparison.differenceByPosition),
    };
  }
  const divergence = firstDivergence(actual.tokens ?? [], expected.tokens ?? []);
  return {
    status: divergence === null ? "pass" : "fail",
    maxAbsLogitDiff: null,
    firstDivergentToken: divergence,
    reason:
      divergence === null
        ? null
        : `greedy token ${divergence} of ${expected.tokens?.length} differs: ${actual.tokens?.[divergence]} instead of ${expected.tokens?.[divergence]}`,
  };
}

/**
 * Where greedy tokens part and the tolerance allows near ties: the reference's log-probabilities
 * after the shared tokens decide. Two runs each within atol of the reference can pick differently
 * only when the reference's gap between the two picks is at most 2 atol; wider, it is a failure.
 */
async function acceptNearTie(
  comparison: ReturnType<typeof compareOutputs>,
  actual: RunOutput,
  expected: RunOutput,
  tolerance: Tolerance,
  run: PlannedRun,
  signal?: AbortSignal,
): Promise<ReturnType<typeof compareOutputs>> {
  const parted = comparison.firstDivergentToken;
  if (tolerance.greedyNearTies !== true || parted === null || parted === undefined) return comparison;
  const actualToken = actual.tokens?.[parted];
  const expectedToken = expected.tokens?.[parted];
  if (actualToken === undefined || expectedToken === undefined) return comparison;
  const shared = [...run.prompt, ...(expected.tokens ?? []).slice(0, parted)];
  const reference = createReferenceBackend();
  const model = await reference.loadModel({ path: run.model.path });
  const session = await model.createSession({
    selfExtend: run.config,
    contextSize: run.prompt.length + run.generated,
  });
  let gap: number;
  try {
    const evaluation = await session.evaluate(shared, { logits: "all", signal });
    const rows = logSoftmaxRows(evaluation.logits, evaluation.vocabularySize);
    const last = (shared.length - 1) * evaluation.vocabularySize;
    gap = Math.abs(rows[last + expectedToken] - rows[last + actualToken]);
  } finally {
    await session.dispose();
    await model.dispose();
  }
  const bound = 2 * tolerance.atol;
  if (gap > bound) {
    return {
      ...comparison,
      reason: `${comparison.reason}; the reference's gap there is ${gap.toExponential(3)} > 2 atol ${bound}`,
    };
  }
  return {
    ...comparison,
    status: "pass",
    reason: `parted at greedy token ${parted} at a near tie: the reference's gap between ${expectedToken} and ${actualToken} is ${gap.toExponential(3)} <= 2 atol ${bound}`,
  };
}

/** Runs the suite on several backends; each is compared with the reference and with the others. */
export async function runConformanceSuite(
  backends: readonly BackendUnderTest[],
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const cases = (options.cases ?? loadConformanceCases()).filter(
    (testCase) => options.caseNames === undefined || options.caseNames.includes(testCase.name),
  );
  const baseTolerances = options.tolerances ?? loadTolerances();
  const skips = options.skips ?? loadSkipList();
  const reference = createReferenceBackend();
  const results: ConformanceResult[] = [];
  const record = (result: ConformanceResult) => {
    results.push(result);
    options.onResult?.(result);
  };
  const labelOf = (entry: BackendUnderTest) => entry.label ?? entry.backend.name;

  // Availability once per backend, before any work.
  const availability = new Map<BackendUnderTest, string | null>();
  for (const entry of backends) {
    if (entry.unavailableReason !== undefined) {
      availability.set(entry, entry.unavailableReason);
      continue;
    }
    const state = await entry.backend
      .checkAvailability()
      .catch((error) => ({ available: false, reason: describeError(error) }));
    availability.set(entry, state.available ? null : (state.reason ?? "not available"));
  }

  const runs: PlannedRun[] = [];
  const modelCache = new Map<string, ConformanceModel>();
  const modelErrors: { testCase: ConformanceCase; id: string; reason: string }[] = [];
  for (const testCase of cases) {
    if (testCase.tier === "position-map") continue;
    const ids = expandModelIds(testCase.models ?? [], options.userModelPath !== undefined).filter(
      (id) => options.modelIds === undefined || options.modelIds.includes(id),
    );
    for (const id of ids) {
      try {
        let model = modelCache.get(id);
        if (model === undefined) {
          model = prepareModel(id, options);
          modelCache.set(id, model);
        }
        runs.push(planRun(testCase, model));
      } catch (error) {
        modelErrors.push({ testCase, id, reason: describeError(error) });
      }
    }
  }
  const positionCases = cases.filter((testCase) => testCase.tier === "position-map");
  const total = runs.length * (backends.length + 1) + positionCases.length;
  let completed = 0;
  const progress = (backend: string, name: string) => {
    completed += 1;
    options.onProgress?.({ completed, total, backend, case: name });
  };

  // Tier 1: the golden maps, reproduced by core and by every backend that reports the positions
  // its runtime used.
  for (const testCase of positionCases) {
    const golden = loadGoldenPositionMaps();
    const reporters: {
      label: string;
      entry?: BackendUnderTest;
      map: (config: SelfExtendConfig, length: number) => Int32Array | Promise<Int32Array>;
    }[] = [
      { label: "core", map: relativePositionMap },
      ...backends
        .filter((entry) => availability.get(entry) === null && entry.backend.relativePositions !== undefined)
        .map((entry) => ({
          label: labelOf(entry),
          entry,
          map: (config: SelfExtendConfig, length: number) =>
            entry.backend.relativePositions!(config, length, { mode: entry.sessionOptions?.mode }),
        })),
    ];
    for (const reporter of reporters) {
      options.signal?.throwIfAborted();
      let mismatch: string | null = null;
      let threw = false;
      for (const expected of golden) {
        const config = { groupSize: expected.group, neighborWindow: expected.window };
        let actual: Int32Array;
        try {
          actual = await reporter.map(config, expected.length);
        } catch (error) {
          mismatch = `G=${expected.group} W=${expected.window} N=${expected.length}: ${describeError(error)}`;
          threw = true;
          break;
        }
        mismatch = positionMismatch(actual, expected);
        if (mismatch !== null) break;
      }
      const informational = reporter.entry?.informational;
      const row: ConformanceResult = {
        backend: reporter.label,
        case: testCase.name,
        status: mismatch === null ? "pass" : "fail",
        maxAbsLogitDiff: null,
        firstDivergentToken: null,
        reason: mismatch,
        tier: "position-map",
        model: null,
        comparedWith: "golden",
        selfExtend: null,
      };
      record(informational === undefined || threw ? row : asInformational(row, informational.why));
    }
    progress("core", testCase.name);
  }

  for (const { testCase, id, reason } of modelErrors) {
    for (const entry of backends) {
      record({
        backend: labelOf(entry),
        case: `${testCase.name}@${id}`,
        status: "not-available",
        maxAbsLogitDiff: null,
        firstDivergentToken: null,
        reason: `model not available: ${reason}`,
        tier: testCase.tier,
        model: id,
        comparedWith: "reference",
        selfExtend: null,
      });
    }
  }

  // Tiers 2 and 3.
  for (const run of runs) {
    options.signal?.throwIfAborted();
    const expected = await execute({ backend: reference }, run, options.signal);
    progress("reference", run.name);
    const outputs: { entry: BackendUnderTest; output: RunOutput }[] = [];
    const base = {
      case: run.name,
      tier: run.testCase.tier,
      model: run.model.id,
      selfExtend: { groupSize: run.config.groupSize, neighborWindow: run.config.neighborWindow },
      weightTypes: run.model.weightTypes,
    };
    const toleranceOf = (entry: BackendUnderTest) =>
      resolveModelTolerance(
        mergeTolerances(baseTolerances, entry.tolerances, entry.backend.name),
        { backend: entry.backend.name, ...entry.sessionOptions, model: run.model.id },
        run.model.weightTypes,
        run.model.activation,
      );
    for (const entry of backends) {
      const label = labelOf(entry);
      const tolerance = toleranceOf(entry);
      const unavailable = availability.get(entry);
      // A skip for the backend covers its variants too (a model it cannot load, it cannot load in any mode).
      const entrySkips = [...skips, ...(entry.skips ?? [])];
      const skip =
        findSkip(entrySkips, label, run.testCase.name, run.model.id) ??
        findSkip(entrySkips, entry.backend.name, run.testCase.name, run.model.id);
      const architectures = entry.backend.capabilities?.architectures;
      const notAvailable =
        unavailable ??
        (architectures !== undefined && !architectures.includes(run.model.architecture)
          ? `the backend does not run architecture "${run.model.architecture}"`
          : null);
      const note =
        entry.informational === undefined
          ? undefined
          : [entry.informational.why, entry.informational.describe?.(run.config)]
              .filter((text) => text !== undefined && text !== "")
              .join("; ");
      if (notAvailable !== null || skip !== undefined) {
        record({
          ...base,
          ...(note === undefined ? {} : { informational: true as const, note }),
          backend: label,
          status: skip !== undefined ? "skipped" : "not-available",
          maxAbsLogitDiff: null,
          firstDivergentToken: null,
          reason: skip?.reason ?? notAvailable,
          comparedWith: "reference",
        });
        progress(label, run.name);
        continue;
      }
      try {
        const output = await execute(entry, run, options.signal);
        if (entry.informational === undefined) outputs.push({ entry, output });
        const row: ConformanceResult = {
          ...base,
          backend: label,
          comparedWith: "reference",
          tolerance,
          ...(await acceptNearTie(
            compareOutputs(output, expected, tolerance),
            output,
            expected,
            tolerance,
            run,
            options.signal,
          )),
        };
        record(note === undefined ? row : asInformational(row, note));
      } catch (error) {
        if (options.signal?.aborted) throw error;
        if (error instanceof SessionRefused) {
          record({
            ...base,
            ...(note === undefined ? {} : { informational: true as const, note }),
            backend: label,
            status: "not-available",
            maxAbsLogitDiff: null,
            firstDivergentToken: null,
            reason: `the backend refuses these settings for this model: ${error.message}`,
            comparedWith: "reference",
          });
          progress(label, run.name);
          continue;
        }
        // A measured-only run is exempt from its tolerance, not from working: an error counts.
        record({
          ...base,
          ...(entry.informational === undefined
            ? {}
            : { note: `${entry.informational.why}; it threw, which counts as a failure` }),
          backend: label,
          status: "fail",
          maxAbsLogitDiff: null,
          firstDivergentToken: null,
          reason: `threw: ${describeError(error)}`,
          comparedWith: "reference",
        });
      }
      progress(label, run.name);
    }
    if (options.crossCompare === false) continue;
    for (let a = 0; a < outputs.length; a++) {
      for (let b = a + 1; b < outputs.length; b++) {
        const first = outputs[a];
        const second = outputs[b];
        const ta = toleranceOf(first.entry);
        const tb = toleranceOf(second.entry);
        // Each may be off the reference by its own tolerance, in opposite directions.
        const floors = [ta.logProbabilityFloor, tb.logProbabilityFloor].filter(
          (floor) => floor !== undefined,
        );
        const tolerance = {
          atol: ta.atol + tb.atol,
          rtol: ta.rtol + tb.rtol,
          ...(floors.length > 0 ? { logProbabilityFloor: Math.max(...floors) } : {}),
          ...(ta.greedyNearTies === true || tb.greedyNearTies === true ? { greedyNearTies: true } : {}),
        };
        record({
          ...base,
          backend: `${labelOf(first.entry)}+${labelOf(second.entry)}`,
          comparedWith: labelOf(second.entry),
          tolerance,
          ...(await acceptNearTie(
            compareOutputs(first.output, second.output, tolerance),
            first.output,
            second.output,
            tolerance,
            run,
            options.signal,
          )),
        });
      }
    }
  }
  return { specVersion: specificationVersion, results, summary: summarize(results) };
}

/**
 * The suite for one adapter: what a third-party adapter author calls.
 * `runConformance(() => createMyBackend(), { cases })` returns the report; its summary says whether
 * everything passed.
 */
export async function runConformance(
  createBackend: () => SelfExtendBackendV1 | Promise<SelfExtendBackendV1>,
  options: ConformanceOptions & {
    readonly label?: string;
    readonly sessionOptions?: BackendUnderTest["sessionOptions"];
    /** The adapter's own tolerance data, merged over the suite's. */
    readonly adapterTolerances?: ToleranceTable;
    /** The adapter's own skips, added to the suite's. */
    readonly adapterSkips?: readonly SkipEntry[];
    /** The adapter's variants (other modes), each run and reported as its own backend column. */
    readonly variants?: readonly ConformanceVariant[];
  } = {},
): Promise<ConformanceReport> {
  const backend = await createBackend();
  const shared = { backend, tolerances: options.adapterTolerances, skips: options.adapterSkips };
  return runConformanceSuite(
    [
      { ...shared, label: options.label, sessionOptions: options.sessionOptions },
      ...(options.variants ?? []).map((variant) => ({ ...shared, ...variant })),
    ],
    options,
  );
}
