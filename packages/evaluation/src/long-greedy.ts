/**
 * Greedy agreement at long context across adapters (issue 16's full-shape proof): one model, one
 * deterministic prompt of many times the trained context, Self-Extend as core's planner picks it,
 * then greedy decoding. Each adapter's run is written to its own JSON file (tokens, and for every
 * step the top candidates with their log-probabilities); `compareGreedyRuns` then says where two
 * runs' tokens first differ and how far apart their log-probabilities were before that, so a
 * divergence can be told apart from a near-tie (two candidates within float error of each other).
 *
 * Runs are one process per adapter because the GPU machine's adapters need different native
 * runtimes; the prompt is a pure function of (length, vocabulary), so every process feeds the same
 * tokens without passing them around.
 */
import {
  argmax,
  planSelfExtend,
  type SelfExtendBackendV1,
  type SelfExtendConfig,
  type SelfExtendModelV1,
} from "@self-extend/core";
import { negativeLogLikelihood } from "@self-extend/reference";
import { writeJsonFileAtomically } from "./result-file.js";
import { trainedContextArgument } from "./scale-benchmark.js";
import { runScriptMain } from "./script-main.js";
import { deterministicPromptTokens } from "./speed-benchmark.js";

/** How many candidates per step are kept (by log-probability). */
const keptCandidates = 5;

export interface GreedyCandidate {
  readonly token: number;
  readonly logProbability: number;
}

export interface GreedyStep {
  readonly token: number;
  /** The step's best candidates, best first (token is the first one's). */
  readonly candidates: readonly GreedyCandidate[];
}

export interface LongGreedyRun {
  readonly selfExtend: SelfExtendConfig;
  readonly contextSize: number;
  readonly promptLength: number;
  readonly steps: readonly GreedyStep[];
  readonly prefillSeconds: number;
  readonly decodeSeconds: number;
}

/** The prompt of every long greedy run (the speed benchmark's sequence, another seed). */
export function longGreedyPrompt(length: number, vocabularySize: number): number[] {
  return deterministicPromptTokens(length, vocabularySize, 7);
}

/** The best `count` entries of a logits row as log-probabilities (float64 log-sum-exp). */
export function topCandidates(logits: ArrayLike<number>, count = keptCandidates): GreedyCandidate[] {
  // The row's log-sum-exp, from the reference's -log softmax of entry 0.
  const logNormalizer = negativeLogLikelihood(logits, 0, logits.length, 0) + logits[0];
  const best: GreedyCandidate[] = [];
  for (let index = 0; index < logits.length; index++) {
    const value = logits[index];
    if (best.length === count && value <= best[count - 1].logProbability + logNormalizer) continue;
    const candidate = { token: index, logProbability: value - logNormalizer };
    let position = best.length;
    while (position > 0 && best[position - 1].logProbability < candidate.logProbability) position--;
    best.splice(position, 0, candidate);
    if (best.length > count) best.pop();
  }
  return best;
}

export interface LongGreedyOptions {
  readonly selfExtend: SelfExtendConfig;
  readonly promptLength: number;
  readonly decodeTokens: number;
  /** Called after the prompt and after each decoded token, with the steps so far. */
  readonly onStep?: (steps: readonly GreedyStep[]) => void;
}

/** Evaluates the prompt, then decodes greedily, keeping each step's best candidates. */
export async function runLongGreedy(
  model: SelfExtendModelV1,
  options: LongGreedyOptions,
): Promise<LongGreedyRun> {
  const { promptLength, decodeTokens } = options;
  if (!Number.isSafeInteger(promptLength) || promptLength < 1) {
    throw new RangeError(`prompt length ${promptLength} is invalid: must be an integer >= 1`);
  }
  if (!Number.isSafeInteger(decodeTokens) || decodeTokens < 1) {
    throw new RangeError(`decoded tokens ${decodeTokens} is invalid: must be an integer >= 1`);
  }
  const contextSize = promptLength + decodeTokens;
  const prompt = longGreedyPrompt(promptLength, model.info.vocabularySize);
  const session = await model.createSession({ selfExtend: options.selfExtend, contextSize });
  try {
    const steps: GreedyStep[] = [];
    const record = (logits: Float32Array) => {
      const token = argmax(logits);
      const step = { token, candidates: topCandidates(logits) };
      steps.push(step);
      options.onStep?.(steps);
      return token;
    };
    let start = performance.now();
    let token = record((await session.evaluate(prompt, { logits: "last" })).logits);
    const prefillSeconds = (performance.now() - start) / 1000;
    start = performance.now();
    while (steps.length < decodeTokens) token = record(await session.decode(token));
    return {
      selfExtend: options.selfExtend,
      contextSize,
      promptLength,
      steps,
      prefillSeconds,
      decodeSeconds: (performance.now() - start) / 1000,
    };
  } finally {
    await session.dispose();
  }
}

export interface GreedyComparison {
  /** Steps compared (the shorter run's length). */
  readonly compared: number;
  /** The first step whose tokens differ, or undefined when all compared steps agree. */
  readonly firstDifference?: number;
  /**
   * Over the steps up to and including the first difference (all steps when none): the largest
   * |difference| of a token's log-probability between the runs, over tokens both runs kept.
   */
  readonly largestLogProbabilityDifference: number;
  /** The smallest gap between a step's best and second candidate in `first`, over the same steps. */
  readonly smallestMargin: number;
}

/** Where two greedy runs first differ, and how close their numbers were until then. */
export function compareGreedyRuns(
  first: readonly GreedyStep[],
  second: readonly GreedyStep[],
): GreedyComparison {
  const compared = Math.min(first.length, second.length);
  let firstDifference: number | undefined;
  let largestLogProbabilityDifference = 0;
  let smallestMargin = Number.POSITIVE_INFINITY;
  for (let index = 0; index < compared && firstDifference === undefined; index++) {
    const [a, b] = [first[index], second[index]];
    if (a.token !== b.token) firstDifference = index;
    for (const candidate of a.candidates) {
      const other = b.candidates.find((entry) => entry.token === candidate.token);
      if (other === undefined) continue;
      largestLogProbabilityDifference = Math.max(
        largestLogProbabilityDifference,
        Math.abs(candidate.logProbability - other.logProbability),
      );
    }
    if (a.candidates.length > 1) {
      smallestMargin = Math.min(
        smallestMargin,
        a.candidates[0].logProbability - a.candidates[1].logProbability,
      );
    }
  }
  return {
    compared,
    ...(firstDifference === undefined ? {} : { firstDifference }),
    largestLogProbabilityDifference,
    smallestMargin,
  };
}

export interface LongGreedyScriptOptions {
  /** The backend's label (`llama-cpp`, `onnxruntime`, `webgpu`). */
  readonly label: string;
  readonly backend: SelfExtendBackendV1;
  readonly modelPath: string;
  /** Prompt plus decoded tokens, as a multiple of the model's trained context. */
  readonly multiple: number;
  readonly decodeTokens: number;
  readonly jsonPath: string;
  /** What ran it (adapter, GPU runtime, devices): kept at the top of the JSON. */
  readonly device: Readonly<Record<string, unknown>>;
  readonly log?: (line: string) => void;
}

/**
 * One adapter's long greedy run as the GPU scripts make it: Self-Extend as the planner picks it
 * for multiple x L tokens, the JSON rewritten (atomically) after the prompt and every 16 tokens so
 * a run cut short by a machine's time limit keeps what it did.
 */
export async function runLongGreedyScript(options: LongGreedyScriptOptions): Promise<LongGreedyRun> {
  const log = options.log ?? console.log;
  log(`device: ${JSON.stringify(options.device)}`);
  let start = performance.now();
  const model = await options.backend.loadModel({ path: options.modelPath });
  try {
    const loadSeconds = (performance.now() - start) / 1000;
    log(`loaded in ${loadSeconds.toFixed(1)} s: ${JSON.stringify(model.info)}`);
    const contextSize = Math.round(options.multiple * model.info.trainedContext);
    const promptLength = contextSize - options.decodeTokens;
    if (promptLength < 1) {
      throw new RangeError(
        `context ${contextSize} (${options.multiple} x L) must exceed the ${options.decodeTokens} decoded tokens`,
      );
    }
    const selfExtend = planSelfExtend({
      trainedContext: model.info.trainedContext,
      targetContext: contextSize,
    }).config;
    log(
      `${options.label}: ${promptLength}-token prompt + ${options.decodeTokens} greedy tokens, Self-Extend G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow}`,
    );
    const save = (steps: readonly GreedyStep[], extra: Record<string, unknown> = {}) =>
      writeJsonFileAtomically(options.jsonPath, {
        label: options.label,
        ...options.device,
        info: model.info,
        selfExtend,
        contextSize,
        promptLength,
        loadSeconds,
        steps,
        ...extra,
      });
    start = performance.now();
    const run = await runLongGreedy(model, {
      selfExtend,
      promptLength,
      decodeTokens: options.decodeTokens,
      onStep: (steps) => {
        if (steps.length === 1)
          log(`prompt evaluated in ${((performance.now() - start) / 1000).toFixed(1)} s`);
        if (steps.length % 16 === 1) save(steps);
      },
    });
    save(run.steps, { prefillSeconds: run.prefillSeconds, decodeSeconds: run.decodeSeconds });
    log(
      `${options.label}: prefill ${(promptLength / run.prefillSeconds).toFixed(0)} tok/s, decode ${((options.decodeTokens - 1) / run.decodeSeconds).toFixed(1)} tok/s; tokens ${run.steps.map((step) => step.token).join(",")}`,
    );
    return run;
  } finally {
    await model.dispose();
  }
}

export const longGreedyUsage =
  "<model folder> <json out> [trained context, default 4096] [multiple, default 4] [decoded tokens, default 64]";

export interface LongGreedyArguments {
  readonly folder: string;
  readonly jsonPath: string;
  readonly trainedContext: number;
  readonly multiple: number;
  readonly decodeTokens: number;
}

/** `<folder> <json out> [trained context] [multiple] [decoded tokens]`, each checked, one line on error. */
export function parseLongGreedyArguments(argumentsList: readonly string[]): LongGreedyArguments {
  const [folder, jsonPath, trainedText = "4096", multipleText = "4", decodeText = "64"] = argumentsList;
  if (folder === undefined || jsonPath === undefined) throw new RangeError(`usage: ${longGreedyUsage}`);
  const trainedContext = trainedContextArgument(trainedText);
  const multiple = Number(multipleText);
  if (!(Number.isFinite(multiple) && multiple > 0)) {
    throw new RangeError(`multiple "${multipleText}" is invalid: must be a positive number`);
  }
  const decodeTokens = Number(decodeText);
  if (!Number.isSafeInteger(decodeTokens) || decodeTokens < 1) {
    throw new RangeError(`decoded tokens "${decodeText}" is invalid: must be an integer >= 1`);
  }
  return { folder, jsonPath, trainedContext, multiple, decodeTokens };
}

export interface LongGreedyMainOptions {
  /** The backend's label (`llama-cpp`, `onnxruntime`, `webgpu`). */
  readonly label: string;
  /** Writes the model once for trained context L into the folder and returns its path. */
  readonly writeModel: (folder: string, trainedContext: number) => string;
  /** The adapter's backend and what runs it. */
  readonly makeBackend: () => Promise<{
    readonly backend: SelfExtendBackendV1;
    readonly device: Readonly<Record<string, unknown>>;
  }>;
  /** Default: the process's arguments. */
  readonly argumentsList?: readonly string[];
}

/**
 * The whole of an adapter's gpu-long-greedy script: its arguments, the model (or an existing file
 * named by SELF_EXTEND_GREEDY_MODEL, to try a script with a small model first), the backend and
 * the run; any error is one line and exit status 2 (runScriptMain).
 */
export function runLongGreedyMain(options: LongGreedyMainOptions): Promise<void> {
  return runScriptMain("gpu-long-greedy", async () => {
    const { folder, jsonPath, trainedContext, multiple, decodeTokens } = parseLongGreedyArguments(
      options.argumentsList ?? process.argv.slice(2),
    );
    const modelPath = process.env.SELF_EXTEND_GREEDY_MODEL ?? options.writeModel(folder, trainedContext);
    const { backend, device } = await options.makeBackend();
    await runLongGreedyScript({
      label: options.label,
      backend,
      modelPath,
      multiple,
      decodeTokens,
      jsonPath,
      device,
    });
  });
}
