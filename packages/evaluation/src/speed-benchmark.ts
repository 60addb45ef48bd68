/**
 * What Self-Extend costs on one runtime: prefill and decode speed of a Self-Extend session against
 * a plain session (G = 1) of the same adapter and model, at several multiples of the trained
 * context, measured in one run so the ratios share the machine's state. Works on any v1 backend,
 * so `self-extend bench` and the adapters' own benchmarks share this one loop.
 *
 * Per context N = multiple x L: a prompt of N - decodeTokens tokens is evaluated in one call
 * (prefill; the adapter chunks it as it likes), then decodeTokens tokens are decoded one at a time,
 * so the last decode attends to N keys. Plain attention past L produces garbage, but it does the
 * same work, which is what a speed baseline needs. Repeats are interleaved (plain, Self-Extend,
 * plain, ...) and the fastest of each is kept: other processes on a shared machine only ever slow
 * a run down.
 */
import { type SelfExtendConfig, type SelfExtendModelV1, validateSessionForModel } from "@self-extend/core";

export interface SpeedBenchmarkOptions {
  readonly selfExtend: SelfExtendConfig;
  /** Contexts as multiples of the model's trained context, e.g. [1, 2, 4, 8]. */
  readonly multiples: readonly number[];
  /** Tokens decoded one at a time after the prompt (default 32). */
  readonly decodeTokens?: number;
  /** Interleaved repeats; the fastest is kept (default 3). */
  readonly repeats?: number;
  /** Called after each context's row, so long runs show progress. */
  readonly onRow?: (row: SpeedBenchmarkRow) => void;
  /**
   * Further options of the Self-Extend session only (the adapter's `mode`, or tuning knobs of its
   * own such as llama-cpp's `prefillChunkSize`); the plain session keeps the adapter's defaults.
   */
  readonly selfExtendSessionOptions?: Readonly<Record<string, unknown>>;
}

export interface SpeedMeasurement {
  readonly prefillTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
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
  readonly decodeTimeRatio: number;
}

const plainAttention: SelfExtendConfig = { groupSize: 1, neighborWindow: 1 };

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

async function measureOnce(
  model: SelfExtendModelV1,
  selfExtend: SelfExtendConfig,
  contextSize: number,
  prompt: readonly number[],
  decodeTokens: number,
  sessionOptions: Readonly<Record<string, unknown>> = {},
): Promise<SpeedMeasurement> {
  const session = await model.createSession({ ...sessionOptions, selfExtend, contextSize });
  try {
    // Warm-up: first runs allocate arenas, compile pipelines and build graphs.
    await session.evaluate(prompt.slice(0, Math.min(16, prompt.length)), { logits: "none" });
    await session.reset();
    let start = performance.now();
    await session.evaluate(prompt, { logits: "last" });
    const prefillSeconds = (performance.now() - start) / 1000;
    start = performance.now();
    for (let step = 0; step < decodeTokens; step++) await session.decode(prompt[step % prompt.length]);
    const decodeSeconds = (performance.now() - start) / 1000;
    return {
      prefillTokensPerSecond: prompt.length / prefillSeconds,
      decodeTokensPerSecond: decodeTokens / decodeSeconds,
      ...(session.cacheBytes !== undefined ? { cacheBytes: session.cacheBytes } : {}),
    };
  } finally {
    await session.dispose();
  }
}

function fastest(a: SpeedMeasurement | undefined, b: SpeedMeasurement): SpeedMeasurement {
  if (a === undefined) return b;
  return {
    ...b,
    prefillTokensPerSecond: Math.max(a.prefillTokensPerSecond, b.prefillTokensPerSecond),
    decodeTokensPerSecond: Math.max(a.decodeTokensPerSecond, b.decodeTokensPerSecond),
  };
}

export async function runSpeedBenchmark(
  model: SelfExtendModelV1,
  options: SpeedBenchmarkOptions,
): Promise<SpeedBenchmarkRow[]> {
  const decodeTokens = options.decodeTokens ?? 32;
  const repeats = options.repeats ?? 3;
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
    let plain: SpeedMeasurement | undefined;
    let extended: SpeedMeasurement | undefined;
    for (let repeat = 0; repeat < repeats; repeat++) {
      plain = fastest(plain, await measureOnce(model, plainAttention, contextSize, prompt, decodeTokens));
      extended = fastest(
        extended,
        await measureOnce(
          model,
          options.selfExtend,
          contextSize,
          prompt,
          decodeTokens,
          options.selfExtendSessionOptions,
        ),
      );
    }
    const plainResult = plain as SpeedMeasurement;
    const extendedResult = extended as SpeedMeasurement;
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
