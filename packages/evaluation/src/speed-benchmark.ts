/**
 * What Self-Extend costs on one runtime: prefill and decode speed of a Self-Extend session against
 * a plain session (G = 1) of the same adapter and model, at several multiples of the trained
 * context, measured in one run so the ratios share the machine's state. Works on any v1 backend,
 * so `self-extend bench` and the adapters' own benchmarks share this one loop.
 *
 * Per context N = multiple x L: a prompt of N - decodeTokens tokens (prefill), then decodeTokens
 * tokens decoded one at a time, so the last decode attends to N keys. Plain attention past L
 * produces garbage, but it does the same work, which is what a speed baseline needs.
 *
 * The two sessions run side by side, not one after the other: the prompt goes in up to
 * `prefillSegments` parts (prompts of 4096 tokens and more) and the decode in blocks of
 * `decodeBlockTokens` tokens, the sessions taking turns and swapping which goes first at every
 * turn (plain, Self-Extend, Self-Extend, plain, ...). Whatever drifts during a run (a GPU's
 * clocks, other processes, a warming cache) then falls on both sides alike; run one after the
 * other, such drift made one-run decode ratios on a GPU swing from 0.71 to 1.78 (webgpu README,
 * "Real GPU"). Prefill keeps the fastest repeat (other
 * processes only ever slow a run down); decode speed is the median decode step over every repeat,
 * so a single stalled step (a garbage collection, a page fault) does not move it.
 */
import {
  type SelfExtendConfig,
  type SelfExtendModelV1,
  type SelfExtendSessionV1,
  validateSessionForModel,
} from "@self-extend/core";

export interface SpeedBenchmarkOptions {
  readonly selfExtend: SelfExtendConfig;
  /** Contexts as multiples of the model's trained context, e.g. [1, 2, 4, 8]. */
  readonly multiples: readonly number[];
  /** Tokens decoded one at a time after the prompt (default 32). */
  readonly decodeTokens?: number;
  /** Repeats; prefill keeps the fastest, decode the median step over all of them (default 3). */
  readonly repeats?: number;
  /** Called after each context's row, so long runs show progress. */
  readonly onRow?: (row: SpeedBenchmarkRow) => void;
  /**
   * Further options of the Self-Extend session only (the adapter's `mode`, or tuning knobs of its
   * own such as llama-cpp's `prefillChunkSize`); the plain session keeps the adapter's defaults.
   */
  readonly selfExtendSessionOptions?: Readonly<Record<string, unknown>>;
  /** The clock, in milliseconds (default `performance.now`); tests pass their own. */
  readonly now?: () => number;
}

/** Quantiles of one session's decode steps over every repeat, in milliseconds. */
export interface DecodeStepMilliseconds {
  readonly p10: number;
  readonly median: number;
  readonly p90: number;
}

export interface SpeedMeasurement {
  /** Prompt tokens over the fastest repeat's prefill time. */
  readonly prefillTokensPerSecond: number;
  /** 1000 over the median decode step in milliseconds. */
  readonly decodeTokensPerSecond: number;
  readonly decodeStepMilliseconds: DecodeStepMilliseconds;
  /** The session's KV cache bytes holding the whole context, where the adapter reports them. */
  readonly cacheBytes?: number;
}

export interface SpeedBenchmarkRow {
  readonly multiple: number;
  readonly contextSize: number;
  readonly plain: SpeedMeasurement;
  readonly selfExtend: SpeedMeasurement;
  /** Time of Self-Extend over time of plain attention for the same prompt (1.15 = 15% slower). */
  readonly prefillTimeRatio: number;
  /** Median decode step of Self-Extend over that of plain attention. */
  readonly decodeTimeRatio: number;
}

const plainAttention: SelfExtendConfig = { groupSize: 1, neighborWindow: 1 };

/** Parts the prompt is fed in, the sessions taking turns (fewer for prompts under 8 parts' worth). */
export const prefillSegments = 8;
/**
 * The shortest part: a prompt under twice this goes in one call. Parts change how an adapter
 * batches a prompt (llama.cpp's plain prefill of the demo model ran faster in parts of 252 tokens
 * than in one call of 2016), so only prompts long enough to drift are cut, and never below a
 * batch of llama.cpp's default size (2048) or the other adapters' smaller chunks.
 */
export const shortestPrefillSegment = 2048;
/** Tokens each session decodes before the other takes its turn. */
export const decodeBlockTokens = 8;

/**
 * Deterministic prompt tokens spread over the vocabulary, BOS-free (ids from 3 up): a linear
 * congruential sequence from `seed`, so separate processes (one per adapter) feed the same tokens.
 */
export function deterministicPromptTokens(length: number, vocabularySize: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return 3 + (state % (vocabularySize - 3));
  });
}

/** [start, end) of each prompt part: up to `prefillSegments` of at least `shortestPrefillSegment` tokens. */
export function promptSegments(promptLength: number): Array<readonly [number, number]> {
  const count = Math.max(1, Math.min(prefillSegments, Math.floor(promptLength / shortestPrefillSegment)));
  return Array.from({ length: count }, (_, index) => [
    Math.floor((index * promptLength) / count),
    Math.floor(((index + 1) * promptLength) / count),
  ]);
}

/** The q-quantile of sorted values, interpolated linearly between ranks. */
function quantile(sorted: readonly number[], q: number): number {
  const rank = q * (sorted.length - 1);
  const below = Math.floor(rank);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (rank - below);
}

interface Side {
  readonly selfExtend: SelfExtendConfig;
  readonly sessionOptions: Readonly<Record<string, unknown>>;
  /** The fastest repeat's prefill, in milliseconds. */
  fastestPrefill: number;
  readonly decodeSteps: number[];
  cacheBytes?: number;
}

const newSide = (selfExtend: SelfExtendConfig, sessionOptions: Side["sessionOptions"]): Side => ({
  selfExtend,
  sessionOptions,
  fastestPrefill: Number.POSITIVE_INFINITY,
  decodeSteps: [],
});

/** One repeat: both sessions open, the prompt and then the decode fed to them in turns. */
async function measureSideBySide(
  model: SelfExtendModelV1,
  sides: readonly Side[],
  contextSize: number,
  prompt: readonly number[],
  decodeTokens: number,
  now: () => number,
): Promise<void> {
  const sessions: SelfExtendSessionV1[] = [];
  try {
    for (const side of sides) {
      const session = await model.createSession({
        ...side.sessionOptions,
        selfExtend: side.selfExtend,
        contextSize,
      });
      sessions.push(session);
      // Warm-up: first runs allocate arenas, compile pipelines and build graphs.
      await session.evaluate(prompt.slice(0, Math.min(16, prompt.length)), { logits: "none" });
      await session.reset();
    }
    // Turn k: side k % 2 first (0, 1, then 1, 0, ...), so neither side always follows the other.
    const inTurn = (turn: number) => (turn % 2 === 0 ? [0, 1] : [1, 0]);
    const prefill = sides.map(() => 0);
    const segments = promptSegments(prompt.length);
    for (const [turn, [start, end]] of segments.entries()) {
      for (const index of inTurn(turn)) {
        const begun = now();
        await sessions[index].evaluate(prompt.slice(start, end), {
          logits: end === prompt.length ? "last" : "none",
        });
        prefill[index] += now() - begun;
      }
    }
    for (let first = 0, turn = 0; first < decodeTokens; first += decodeBlockTokens, turn++) {
      for (const index of inTurn(turn)) {
        for (let step = first; step < Math.min(first + decodeBlockTokens, decodeTokens); step++) {
          const begun = now();
          await sessions[index].decode(prompt[step % prompt.length]);
          sides[index].decodeSteps.push(now() - begun);
        }
      }
    }
    for (const [index, side] of sides.entries()) {
      side.fastestPrefill = Math.min(side.fastestPrefill, prefill[index]);
      const cacheBytes = sessions[index].cacheBytes;
      if (cacheBytes !== undefined) side.cacheBytes = cacheBytes;
    }
  } finally {
    for (const session of sessions) await session.dispose();
  }
}

function measurement(side: Side, promptLength: number): SpeedMeasurement {
  const sorted = [...side.decodeSteps].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  return {
    prefillTokensPerSecond: promptLength / (side.fastestPrefill / 1000),
    decodeTokensPerSecond: 1000 / median,
    decodeStepMilliseconds: { p10: quantile(sorted, 0.1), median, p90: quantile(sorted, 0.9) },
    ...(side.cacheBytes !== undefined ? { cacheBytes: side.cacheBytes } : {}),
  };
}

export async function runSpeedBenchmark(
  model: SelfExtendModelV1,
  options: SpeedBenchmarkOptions,
): Promise<SpeedBenchmarkRow[]> {
  const decodeTokens = options.decodeTokens ?? 32;
  const repeats = options.repeats ?? 3;
  const now = options.now ?? (() => performance.now());
  const { trainedContext, vocabularySize } = model.info;
  const contextSizes = options.multiples.map((multiple) => {
    if (!(Number.isFinite(multiple) && multiple > 0)) {
      throw new RangeError(`context multiple ${multiple} must be a positive number`);
    }
    const contextSize = Math.round(multiple * trainedContext);
    if (contextSize <= decodeTokens) {
      throw new RangeError(
        `context ${contextSize} (${multiple} x L = ${trainedContext}) must exceed the ${decodeTokens} decoded tokens`,
      );
    }
    // Refuse a Self-Extend setting too short for the longest context before measuring anything.
    validateSessionForModel({ selfExtend: options.selfExtend, contextSize }, model.info);
    return contextSize;
  });
  const rows: SpeedBenchmarkRow[] = [];
  for (const [index, multiple] of options.multiples.entries()) {
    const contextSize = contextSizes[index];
    const prompt = deterministicPromptTokens(contextSize - decodeTokens, vocabularySize, 11);
    const plain = newSide(plainAttention, {});
    const extended = newSide(options.selfExtend, options.selfExtendSessionOptions ?? {});
    for (let repeat = 0; repeat < repeats; repeat++) {
      await measureSideBySide(model, [plain, extended], contextSize, prompt, decodeTokens, now);
    }
    const plainResult = measurement(plain, prompt.length);
    const extendedResult = measurement(extended, prompt.length);
    const row: SpeedBenchmarkRow = {
      multiple,
      contextSize,
      plain: plainResult,
      selfExtend: extendedResult,
      prefillTimeRatio: plainResult.prefillTokensPerSecond / extendedResult.prefillTokensPerSecond,
      decodeTimeRatio: plainResult.decodeTokensPerSecond / extendedResult.decodeTokensPerSecond,
    };
    options.onRow?.(row);
    rows.push(row);
  }
  return rows;
}

/** The header of the benchmark table (one row per backend and context, columns split by " | "). */
export const speedBenchmarkHeader =
  "backend | context | plain prefill tok/s | SE prefill tok/s | prefill time SE/plain | plain decode tok/s | SE decode tok/s | decode time SE/plain | plain KV MB | SE KV MB";

const megabytes = (bytes: number | undefined) => (bytes === undefined ? "-" : (bytes / 1048576).toFixed(2));

/** One table line for a row measured on `backend`. */
export function speedBenchmarkLine(backend: string, row: SpeedBenchmarkRow): string {
  return [
    backend,
    `${row.multiple}x (${row.contextSize})`,
    row.plain.prefillTokensPerSecond.toFixed(0),
    row.selfExtend.prefillTokensPerSecond.toFixed(0),
    row.prefillTimeRatio.toFixed(2),
    row.plain.decodeTokensPerSecond.toFixed(1),
    row.selfExtend.decodeTokensPerSecond.toFixed(1),
    row.decodeTimeRatio.toFixed(2),
    megabytes(row.plain.cacheBytes),
    megabytes(row.selfExtend.cacheBytes),
  ].join(" | ");
}
