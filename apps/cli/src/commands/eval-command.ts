import { readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { defaultSharedFolder } from "@self-extend/conformance-app";
import { type SelfExtendConfig, validateSelfExtendConfig } from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import {
  buildPasskeyPrompt,
  createReportWriter,
  defaultAnswerTokens,
  defaultPasskeyFiller,
  defaultPasskeyIntroduction,
  defaultPasskeyQuestion,
  type EvaluationReport,
  type EvaluationRun,
  evaluatePasskey,
  evaluatePerplexity,
  type PasskeyCell,
  type PerplexityCell,
  passkeyKeys,
  planEvaluationRuns,
  type ReportModel,
  renderPasskeyHeatmap,
  renderPerplexityPlot,
  scoredTokenCount,
  sha256OfFile,
} from "@self-extend/evaluation";
import { tokenizeAsOneDocument } from "@self-extend/reference";
import { chooseBackend } from "../backend-choice.js";
import { integerFlag, type OptionSpec, parseFlags, stringFlag } from "../cli-arguments.js";
import { CliUsageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { finishedCells, inRunOrder, runKey } from "../eval-resume.js";
import { requireInputFile, requireOutputFile } from "../input-paths.js";
import { interruptSignal } from "../interrupt.js";
import { type ModelInput, resolveModelInput } from "../model-input.js";
import { createProgress } from "../progress.js";
import type { Terminal } from "../terminal.js";

const defaultLengths = "512,1024,2048";
const defaultDepths = "0,0.25,0.5,0.75,1";
const defaultScoredTokens = 65_536;
const defaultTrials = 5;

const commonFlags = {
  backend: { type: "string" },
  model: { type: "string" },
  tokenizer: { type: "string" },
  lengths: { type: "string" },
  group: { type: "string" },
  window: { type: "string" },
  "compare-plain": { type: "boolean" },
  json: { type: "boolean" },
  plot: { type: "string" },
  out: { type: "string" },
  force: { type: "boolean" },
} as const satisfies OptionSpec;

function listFlag(values: Record<string, unknown>, flag: string, fallback: string): string[] {
  const items = String(values[flag] ?? fallback)
    .split(",")
    .map((item) => item.trim());
  if (items.some((item) => item === "")) throw new CliUsageError(`--${flag} must be a comma-separated list`);
  return items;
}

function lengthsFlag(values: Record<string, unknown>): number[] {
  const lengths = listFlag(values, "lengths", defaultLengths).map((item) => {
    const value = Number(item);
    if (!/^\d+$/.test(item) || value < 2)
      throw new CliUsageError(`--lengths: ${JSON.stringify(item)} is not an integer >= 2`);
    return value;
  });
  if (new Set(lengths).size !== lengths.length) throw new CliUsageError("--lengths repeats a length");
  return lengths;
}

function depthsFlag(values: Record<string, unknown>): number[] {
  return listFlag(values, "depths", defaultDepths).map((item) => {
    const value = Number(item);
    if (!Number.isFinite(value) || value < 0 || value > 1) {
      throw new CliUsageError(`--depths: ${JSON.stringify(item)} is not a number between 0 and 1`);
    }
    return value;
  });
}

/** --out and --plot are checked before the model loads, so a mistyped folder costs nothing. */
function checkOutputFlags(values: Record<string, unknown>): void {
  for (const flag of ["out", "plot"]) {
    const path = stringFlag(values, flag);
    if (path !== undefined) requireOutputFile(flag, path);
  }
  const out = stringFlag(values, "out");
  if (out !== undefined && resolve(out) === resolve(stringFlag(values, "plot") ?? "")) {
    throw new CliUsageError(`--out and --plot are the same file ${out}; give two names`);
  }
}

/** `--group G --window W` for every length, or undefined (the planner picks per length). */
function selfExtendFlag(values: Record<string, unknown>): SelfExtendConfig | undefined {
  const group = integerFlag(values, "group");
  const window = integerFlag(values, "window");
  if ((group === undefined) !== (window === undefined))
    throw new CliUsageError("--group and --window go together");
  if (group === undefined || window === undefined) return undefined;
  return validateSelfExtendConfig({ groupSize: group, neighborWindow: window });
}

interface LoadedInput {
  readonly input: ModelInput;
  readonly report: ReportModel;
  readonly backendName: string;
  readonly backend: Awaited<ReturnType<typeof chooseBackend>>;
}

/**
 * The repository's data folder (stories260K, its tokenizer and the TinyStories text), found only
 * when the CLI runs from a development checkout. An npm user never has it, so the message asks
 * for the flag and says nothing about the repository's layout.
 */
function sharedModelsFolder(what: string, expects: string): string {
  const shared = defaultSharedFolder();
  if (shared === undefined) throw new CliUsageError(`${what} is required: pass ${what} <file> (${expects})`);
  return join(shared, "models");
}

async function loadInput(values: Record<string, unknown>): Promise<LoadedInput> {
  // The default is the demo model that ships with the CLI, so a fresh clone needs no flags.
  const modelPath = resolve(stringFlag(values, "model") ?? demoModelPath);
  const tokenizerPath = stringFlag(values, "tokenizer");
  const backendName = stringFlag(values, "backend") ?? "reference";
  const backend = await chooseBackend(backendName);
  const input = resolveModelInput({ model: modelPath, tokenizer: tokenizerPath });
  return {
    input,
    backendName: backend.name,
    backend,
    report: {
      path: modelPath,
      sha256: await sha256OfFile(modelPath),
      architecture: input.architecture,
      trainedContext: input.trainedContext,
      vocabularySize: input.vocabularySize,
      ...(tokenizerPath === undefined ? {} : { tokenizer: resolve(tokenizerPath) }),
    },
  };
}

function describeRuns(runs: readonly EvaluationRun[], trainedContext: number): string {
  return runs
    .map(
      (run) =>
        `  ${String(run.length).padStart(6)}  ${run.method === "plain" ? "plain" : `G = ${run.selfExtend.groupSize}, W = ${run.selfExtend.neighborWindow}${run.planned ? " (planned)" : ""}`}` +
        (run.beyondTrainedContext
          ? `  largest relative position ${run.largestRelativePosition} > L - 1 = ${trainedContext - 1}`
          : ""),
    )
    .join("\n");
}

/**
 * Runs `work`, which reports finished cells to the writer; on an interrupt the files keep the
 * finished cells (complete: false), --json prints that partial report, and the exit code is 130.
 */
async function runWithReport<Cell>(
  terminal: Terminal,
  json: boolean,
  writer: ReturnType<typeof createReportWriter<Cell>>,
  keptCells: readonly Cell[],
  work: () => Promise<unknown>,
  table: (report: EvaluationReport<Cell>) => string,
): Promise<number> {
  // A resumed file starts with its finished cells, so an interrupt now never loses them.
  writer.update(keptCells);
  try {
    await work();
  } catch (error) {
    if ((error as Error)?.name !== "AbortError") throw error;
    const partial = writer.finish(false);
    terminal.error(`interrupted: kept ${partial.cells.length} finished cell(s)\n`);
    if (json) terminal.out(`${JSON.stringify(partial)}\n`);
    else if (partial.cells.length > 0) terminal.out(table(partial));
    return 130;
  }
  const report = writer.finish(true);
  terminal.out(json ? `${JSON.stringify(report)}\n` : table(report));
  return 0;
}

function perplexityTable(report: EvaluationReport<PerplexityCell>): string {
  const ranges = [
    ...new Map(
      report.cells.flatMap((cell) =>
        cell.buckets.map((bucket) => [`${bucket.start}-${bucket.end - 1}`, bucket.start] as const),
      ),
    ),
  ].sort((a, b) => a[1] - b[1]);
  const header = [
    "length",
    "method".padEnd(24),
    "PPL".padStart(8),
    ...ranges.map(([name]) => name.padStart(10)),
  ];
  const rows = report.cells.map((cell) => [
    String(cell.length).padStart(6),
    cell.label.padEnd(24),
    cell.perplexity.toFixed(3).padStart(8),
    ...ranges.map(([name]) => {
      const bucket = cell.buckets.find((candidate) => `${candidate.start}-${candidate.end - 1}` === name);
      return (bucket ? bucket.perplexity.toFixed(3) : "").padStart(10);
    }),
  ]);
  return `${[header, ...rows].map((row) => row.join("  ")).join("\n")}\n`;
}

function passkeyTable(report: EvaluationReport<PasskeyCell>): string {
  const depths = [...new Set(report.cells.map((cell) => cell.depth))].sort((a, b) => a - b);
  const runs = [
    ...new Map(report.cells.map((cell) => [`${cell.length} ${cell.label}`, cell] as const)).values(),
  ];
  const header = ["length", "method".padEnd(24), ...depths.map((depth) => `d=${depth}`.padStart(7)), "  all"];
  const rows = runs.map((run) => {
    const cells = report.cells.filter((cell) => cell.length === run.length && cell.label === run.label);
    const successes = cells.reduce((sum, cell) => sum + cell.successes, 0);
    const trials = cells.reduce((sum, cell) => sum + cell.trials.length, 0);
    return [
      String(run.length).padStart(6),
      run.label.padEnd(24),
      ...depths.map((depth) => {
        const cell = cells.find((candidate) => candidate.depth === depth);
        return (cell ? `${Math.round(cell.accuracy * 100)}%` : "").padStart(7);
      }),
      `${Math.round((successes / trials) * 100)}%`.padStart(5),
    ];
  });
  return `${[header, ...rows].map((row) => row.join("  ")).join("\n")}\n`;
}

async function runPerplexity(args: readonly string[], terminal: Terminal): Promise<number> {
  const { values } = parseFlags(
    args,
    { ...commonFlags, text: { type: "string" }, tokens: { type: "string" } },
    "eval ppl",
  );
  checkOutputFlags(values);
  const lengths = lengthsFlag(values);
  const selfExtend = selfExtendFlag(values);
  const requestedTokens = integerFlag(values, "tokens", { smallest: 2 }) ?? defaultScoredTokens;
  const textPath = resolve(requireInputFile("text", stringFlag(values, "text") ?? defaultTextPath()));
  const { input, report: model, backend, backendName } = await loadInput(values);
  const runs = planEvaluationRuns({
    lengths,
    trainedContext: input.trainedContext,
    selfExtend,
    comparePlain: Boolean(values["compare-plain"]),
  });
  let text: string;
  try {
    text = readFileSync(textPath, "utf8");
  } catch (error) {
    throw new CliUsageError(`--text ${textPath}: ${(error as Error).message}`);
  }
  const tokens = tokenizeAsOneDocument(text, input.tokenizer);
  let scored: number;
  try {
    scored = scoredTokenCount(tokens.length, lengths, requestedTokens);
  } catch (error) {
    throw new CliUsageError(`--text ${textPath}: ${(error as Error).message}`);
  }
  const subtitle = `${basename(model.path)} (sha256 ${model.sha256.slice(0, 12)}), ${backendName}, ${scored} tokens of ${basename(textPath)}`;
  const settings = {
    text: textPath,
    textSha256: await sha256OfFile(textPath),
    documentLayout: "blocks separated by blank lines joined by one newline, one BOS, no EOS",
    documentTokens: tokens.length,
    scoredTokens: scored,
    lengths,
    selfExtend: selfExtend ?? "planned per length",
    comparePlain: Boolean(values["compare-plain"]),
  };
  const outPath = stringFlag(values, "out");
  const runKeys = runs.map(runKey);
  const kept = finishedCells<PerplexityCell>(
    outPath,
    { evaluation: "perplexity", formatVersion: 1, backend: backendName, modelSha256: model.sha256, settings },
    Boolean(values.force),
  ).filter((cell) => runKeys.includes(runKey(cell)));
  const remaining = runs.filter((run) => !kept.some((cell) => runKey(cell) === runKey(run)));
  terminal.error(
    `${backendName}: ${basename(model.path)}, trained context ${input.trainedContext}; ${scored} scored tokens of ${basename(textPath)} ` +
      `(${tokens.length} as one document) per run\n${describeRuns(runs, input.trainedContext)}\n`,
  );
  if (kept.length > 0) {
    terminal.error(`resuming ${outPath}: kept ${kept.length} finished cell(s), ${remaining.length} to go\n`);
  }
  const writer = createReportWriter<PerplexityCell>({
    report: {
      evaluation: "perplexity",
      formatVersion: 1,
      commandLine: ["self-extend", "eval", "ppl", ...args],
      startedAt: new Date().toISOString(),
      backend: backendName,
      model,
      settings,
    },
    jsonPath: outPath,
    plotPath: stringFlag(values, "plot"),
    renderPlot: (cells) => renderPerplexityPlot(cells, { trainedContext: input.trainedContext, subtitle }),
  });
  const progress = createProgress(terminal, "eval ppl");
  const loaded = await backend.loadModel({ path: input.ggufPath });
  try {
    return await runWithReport(
      terminal,
      Boolean(values.json),
      writer,
      kept,
      async () => {
        if (remaining.length === 0) return;
        await evaluatePerplexity(loaded, tokens, {
          runs: remaining,
          scoredTokens: scored,
          // The curve's bucket width follows the longest of all lengths, not of the remaining runs,
          // so resumed cells match the ones an uninterrupted run makes.
          curveBucketWidth: Math.max(1, Math.ceil(Math.max(...lengths) / 64)),
          signal: interruptSignal(),
          onProgress: ({ tokensDone, tokensTotal, run }) =>
            progress.update(tokensDone, tokensTotal, `${run.length} ${run.method}`),
          onCell: (_cell, cells) => writer.update(inRunOrder([...kept, ...cells], runKeys, runKey)),
        }).finally(() => progress.done());
      },
      perplexityTable,
    );
  } finally {
    await loaded.dispose();
  }
}

async function runPasskey(args: readonly string[], terminal: Terminal): Promise<number> {
  const { values } = parseFlags(
    args,
    {
      ...commonFlags,
      depths: { type: "string" },
      trials: { type: "string" },
      seed: { type: "string" },
      "answer-tokens": { type: "string" },
      filler: { type: "string" },
      question: { type: "string" },
      introduction: { type: "string" },
    },
    "eval passkey",
  );
  checkOutputFlags(values);
  const lengths = lengthsFlag(values);
  const depths = depthsFlag(values);
  const trials = integerFlag(values, "trials") ?? defaultTrials;
  const seed = integerFlag(values, "seed", { smallest: 0 }) ?? 0;
  const answerTokens = integerFlag(values, "answer-tokens") ?? defaultAnswerTokens;
  const selfExtend = selfExtendFlag(values);
  const filler = stringFlag(values, "filler") ?? defaultPasskeyFiller;
  const question = stringFlag(values, "question") ?? defaultPasskeyQuestion;
  const introduction = stringFlag(values, "introduction") ?? defaultPasskeyIntroduction;
  const { input, report: model, backend, backendName } = await loadInput(values);
  const runs = planEvaluationRuns({
    lengths,
    trainedContext: input.trainedContext,
    selfExtend,
    comparePlain: Boolean(values["compare-plain"]),
    extraTokens: answerTokens,
  });
  // Every prompt is built before any model work, so a bad length or filler fails at once: the runs
  // are evaluated one at a time below, each with only the depths it still lacks.
  const [sampleKey] = passkeyKeys(trials, seed);
  for (const run of runs) {
    for (const depth of depths) {
      buildPasskeyPrompt(input.tokenizer, {
        length: run.length,
        depth,
        key: sampleKey as string,
        filler,
        question,
        introduction,
      });
    }
  }
  const subtitle = `${basename(model.path)} (sha256 ${model.sha256.slice(0, 12)}), ${backendName}, ${trials} trials per cell, seed ${seed}`;
  const settings = {
    lengths,
    depths,
    trials,
    seed,
    answerTokens,
    filler,
    question,
    introduction,
    selfExtend: selfExtend ?? "planned per length",
    comparePlain: Boolean(values["compare-plain"]),
  };
  const outPath = stringFlag(values, "out");
  const cellKey = (cell: { depth: number } & Parameters<typeof runKey>[0]) => `${runKey(cell)} ${cell.depth}`;
  const cellKeys = runs.flatMap((run) => depths.map((depth) => cellKey({ ...run, depth })));
  const kept = finishedCells<PasskeyCell>(
    outPath,
    { evaluation: "passkey", formatVersion: 1, backend: backendName, modelSha256: model.sha256, settings },
    Boolean(values.force),
  ).filter((cell) => cellKeys.includes(cellKey(cell)));
  const missingDepths = (run: (typeof runs)[number]) =>
    depths.filter((depth) => !kept.some((cell) => cellKey(cell) === cellKey({ ...run, depth })));
  terminal.error(
    `${backendName}: ${basename(model.path)}, trained context ${input.trainedContext}; ${depths.length} depths x ${trials} trials per run, ` +
      `${answerTokens} answer tokens\n${describeRuns(runs, input.trainedContext)}\n`,
  );
  if (kept.length > 0) {
    terminal.error(
      `resuming ${outPath}: kept ${kept.length} finished cell(s), ${cellKeys.length - kept.length} to go\n`,
    );
  }
  const writer = createReportWriter<PasskeyCell>({
    report: {
      evaluation: "passkey",
      formatVersion: 1,
      commandLine: ["self-extend", "eval", "passkey", ...args],
      startedAt: new Date().toISOString(),
      backend: backendName,
      model,
      settings,
    },
    jsonPath: outPath,
    plotPath: stringFlag(values, "plot"),
    renderPlot: (cells) => renderPasskeyHeatmap(cells, { trainedContext: input.trainedContext, subtitle }),
  });
  const progress = createProgress(terminal, "eval passkey");
  const loaded = await backend.loadModel({ path: input.ggufPath });
  try {
    const signal = interruptSignal();
    const finished: PasskeyCell[] = [];
    return await runWithReport(
      terminal,
      Boolean(values.json),
      writer,
      kept,
      async () => {
        try {
          // One run at a time, each with only the depths it still lacks.
          for (const run of runs) {
            const runDepths = missingDepths(run);
            if (runDepths.length === 0) continue;
            await evaluatePasskey(loaded, input.tokenizer, {
              runs: [run],
              depths: runDepths,
              trials,
              seed,
              answerTokens,
              filler,
              question,
              introduction,
              signal,
              onProgress: ({ promptsDone, promptsTotal, tokensDone, tokensTotal }) =>
                progress.update(
                  tokensDone,
                  tokensTotal,
                  `tokens; prompt ${promptsDone}/${promptsTotal}, ${run.length} ${run.method}`,
                ),
              onCell: (cell) => {
                finished.push(cell);
                writer.update(inRunOrder([...kept, ...finished], cellKeys, cellKey));
              },
            });
          }
        } finally {
          progress.done();
        }
      },
      passkeyTable,
    );
  } finally {
    await loaded.dispose();
  }
}

function defaultTextPath(): string {
  return join(sharedModelsFolder("--text", "a UTF-8 text to evaluate"), "tinystories_val_256k.txt");
}

export const evalCommand: Command = {
  name: "eval",
  summary: "long-context evaluation: perplexity against length (ppl) and passkey retrieval (passkey)",
  usage: `self-extend eval ppl [--backend reference] [--model <file>] [--tokenizer <file>] [--text <file>]
                     [--lengths 512,1024,2048] [--group G --window W] [--compare-plain]
                     [--tokens N] [--json] [--out <results.json>] [--plot <file.svg>]
self-extend eval passkey [--backend reference] [--model <file>] [--tokenizer <file>]
                     [--lengths 512,1024,2048] [--depths 0,0.25,0.5,0.75,1] [--trials N]
                     [--group G --window W] [--compare-plain] [--seed S] [--answer-tokens N]
                     [--filler <text>] [--question <text>] [--introduction <text>]
                     [--json] [--out <results.json>] [--plot <file.svg>]

ppl: perplexity over the same tokens for every length, in non-overlapping windows (the text as
one document: blocks joined by a newline, one BOS), overall and by position bucket ([0, L),
[L, 2L), [2L, 4L), ...), so the range past the trained context L is visible.
passkey: the paper's passkey retrieval: the filler repeated, "The pass key is NNNNN. Remember it.
NNNNN is the pass key." at each depth (0 = start, 1 = end), then the question; a trial succeeds
when the greedy continuation contains the key. Keys are seeded (--seed).

Without --group/--window the planner picks (G, W) per length (plain attention where the length
fits in L); --compare-plain adds plain attention at every length. Without --model, the demo model
(@self-extend/demo-model) is used. --text is required outside a development checkout of the
repository (where it defaults to the TinyStories validation text of the repository's data folder).

  --lengths L1,L2,...  tokens per window (ppl) or per prompt (passkey); default ${defaultLengths}
  --tokens N           ppl: scored tokens per run, rounded down to a multiple of every length
                       (default ${defaultScoredTokens}, or all the text allows)
  --trials N           passkey: prompts per length x depth (default ${defaultTrials})
  --answer-tokens N    passkey: greedy tokens generated after the question (default ${defaultAnswerTokens})
  --json               print the results document (command line, model sha256, backend,
                       settings, per-cell numbers) instead of a table
  --out <file.json>    the same document, rewritten after every finished cell (atomically: an
                       interrupt keeps the finished cells and never leaves a broken file). A
                       rerun with the same settings keeps the finished cells and evaluates only
                       the missing ones; a file of other settings is refused
  --force              replace an --out file of other settings instead of refusing
  --plot <file.svg>    ppl: perplexity against position per run; passkey: accuracy heatmap
                       (length x depth); rewritten after every cell like --out`,
  async run(args, terminal) {
    const [subcommand, ...rest] = args;
    if (subcommand === "ppl") return runPerplexity(rest, terminal);
    if (subcommand === "passkey") return runPasskey(rest, terminal);
    throw new CliUsageError(
      subcommand === undefined
        ? "give a subcommand: eval ppl or eval passkey (see `self-extend eval --help`)"
        : `unknown subcommand ${JSON.stringify(subcommand)}; use ppl or passkey`,
    );
  },
};
