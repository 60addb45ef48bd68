/**
 * The GPU scale benchmark every adapter runs (issue 14): one model at real scale (the caller writes
 * it, e.g. @self-extend/models' writeGpuScaleModel: Llama-3.2-1B's layout), Self-Extend as core's
 * planner chooses it for the longest context, against the same adapter at G = 1, through
 * runSpeedBenchmark. The adapters' scripts only make their backend and say what device ran it.
 *
 * After each row the JSON file is rewritten (atomically), then the row printed, so a run cut short by
 * a GPU machine's time limit keeps every row it printed.
 */
import { planSelfExtend, type SelfExtendBackendV1 } from "@self-extend/core";
import { writeJsonFileAtomically } from "./result-file.js";
import {
  runSpeedBenchmark,
  type SpeedBenchmarkRow,
  speedBenchmarkHeader,
  speedBenchmarkLine,
} from "./speed-benchmark.js";

export interface ScaleBenchmarkArguments {
  /** Where the model is written (or found, once written). */
  readonly folder: string;
  readonly trainedContext: number;
  readonly multiples: readonly number[];
  readonly jsonPath?: string;
  /** `--decode N`: tokens decoded after each prompt (runScaleBenchmark's default when absent). */
  readonly decodeTokens?: number;
  /** `--repeats N`: runs per row (runScaleBenchmark's default when absent). */
  readonly repeats?: number;
}

export const scaleBenchmarkUsage =
  "<model folder> [trained context, default 4096] [multiples, default 1,4] [json out] [--decode N] [--repeats N]";

/** A trained-context argument of the GPU scripts: an integer >= 2, refused in one line. */
export function trainedContextArgument(text: string): number {
  const trainedContext = Number(text);
  if (!Number.isSafeInteger(trainedContext) || trainedContext < 2) {
    throw new RangeError(`trained context "${text}" is invalid: must be an integer >= 2`);
  }
  return trainedContext;
}

/** `<folder> [trained context] [multiples] [json out]`, each checked, in one line on error. */
export function parseScaleBenchmarkArguments(argumentsList: readonly string[]): ScaleBenchmarkArguments {
  // `--decode N` and `--repeats N` may stand anywhere; the rest are positional.
  const positional: string[] = [];
  const counts: { decodeTokens?: number; repeats?: number } = {};
  for (let index = 0; index < argumentsList.length; index++) {
    const argument = argumentsList[index];
    const key = argument === "--decode" ? "decodeTokens" : argument === "--repeats" ? "repeats" : undefined;
    if (key === undefined) {
      positional.push(argument);
      continue;
    }
    const text = argumentsList[++index];
    const value = Number(text);
    if (text === undefined || !Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${argument} "${text ?? ""}" is invalid: must be an integer >= 1`);
    }
    counts[key] = value;
  }
  const [folder, trainedText = "4096", multiplesText = "1,4", jsonPath] = positional;
  if (folder === undefined) throw new RangeError(`usage: ${scaleBenchmarkUsage}`);
  const trainedContext = trainedContextArgument(trainedText);
  const multiples = multiplesText.split(",").map(Number);
  if (multiples.some((multiple) => !(Number.isFinite(multiple) && multiple > 0))) {
    throw new RangeError(
      `multiples "${multiplesText}" are invalid: must be positive numbers separated by commas`,
    );
  }
  return { folder, trainedContext, multiples, ...(jsonPath === undefined ? {} : { jsonPath }), ...counts };
}

export interface ScaleBenchmarkOptions {
  /** The backend's label in the table (`llama-cpp`, `webgpu`). */
  readonly label: string;
  readonly backend: SelfExtendBackendV1;
  readonly modelPath: string;
  readonly multiples: readonly number[];
  readonly jsonPath?: string;
  /** What ran it (adapter, GPU runtime, devices): printed, and kept at the top of the JSON. */
  readonly device: Readonly<Record<string, unknown>>;
  /** Tokens decoded one at a time after each prompt (default 16). */
  readonly decodeTokens?: number;
  /** Runs per row, runSpeedBenchmark's repeats (default 1: a GPU machine's time is short). */
  readonly repeats?: number;
  /** Printed lines (default console.log). */
  readonly log?: (line: string) => void;
  /** Options of the Self-Extend session only (runSpeedBenchmark's), printed and kept in the JSON. */
  readonly selfExtendSessionOptions?: Readonly<Record<string, unknown>>;
}

export async function runScaleBenchmark(options: ScaleBenchmarkOptions): Promise<SpeedBenchmarkRow[]> {
  const log = options.log ?? console.log;
  const decodeTokens = options.decodeTokens ?? 16;
  const repeats = options.repeats ?? 1;
  log(`device: ${JSON.stringify(options.device)}`);
  let start = performance.now();
  const model = await options.backend.loadModel({ path: options.modelPath });
  try {
    log(`loaded in ${((performance.now() - start) / 1000).toFixed(1)} s: ${JSON.stringify(model.info)}`);
    // Self-Extend for the longest context, as core's planner chooses it (the CLI's choice too).
    const longest = Math.max(...options.multiples) * model.info.trainedContext;
    const selfExtend = planSelfExtend({
      trainedContext: model.info.trainedContext,
      targetContext: longest + decodeTokens,
    }).config;
    const sessionOptions = options.selfExtendSessionOptions ?? {};
    const described =
      Object.keys(sessionOptions).length === 0
        ? "the adapter's default mode"
        : JSON.stringify(sessionOptions);
    log(
      `Self-Extend G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow} (${described}), ${decodeTokens} decoded tokens, ${repeats === 1 ? "one run" : `${repeats} runs`} side by side`,
    );
    log(speedBenchmarkHeader);
    const completedRows: SpeedBenchmarkRow[] = [];
    start = performance.now();
    const rows = await runSpeedBenchmark(model, {
      selfExtend,
      multiples: options.multiples,
      decodeTokens,
      repeats,
      selfExtendSessionOptions: sessionOptions,
      onRow: (row) => {
        completedRows.push(row);
        if (options.jsonPath !== undefined) {
          writeJsonFileAtomically(options.jsonPath, {
            ...options.device,
            info: model.info,
            selfExtend,
            selfExtendSessionOptions: sessionOptions,
            rows: completedRows,
          });
        }
        log(speedBenchmarkLine(options.label, row));
      },
    });
    log(`benchmark took ${((performance.now() - start) / 1000).toFixed(1)} s`);
    return rows;
  } finally {
    await model.dispose();
  }
}
