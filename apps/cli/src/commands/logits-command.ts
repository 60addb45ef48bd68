import { readFileSync } from "node:fs";
import { chooseBackend, selfExtendFlags, selfExtendFromFlags } from "../backend-choice.js";
import { parseFlags, stringFlag } from "../cli-arguments.js";
import { CliUsageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { requireInputFile, requireOutputFile } from "../input-paths.js";
import { interruptSignal } from "../interrupt.js";
import { resolveModelInput } from "../model-input.js";
import { writeNpyFloat32 } from "../npy-file.js";
import { createProgress } from "../progress.js";

export const logitsCommand: Command = {
  name: "logits",
  summary: "write the logits of every position to a NumPy .npy file",
  usage: `self-extend logits [--backend reference] [--model <file>] [--tokenizer <tok.bin>] --tokens-file <tokens.json>
                   [--group G --window W | --no-extend] --out <logits.npy>

Evaluates the token ids in --tokens-file (a JSON array of integers) and writes a float32 array of
shape [tokens, vocab] in NumPy's .npy format (np.load reads it). Without --group/--window the
planner picks settings for the sequence length. The file is written only when everything succeeded.`,
  async run(args, terminal) {
    const { values } = parseFlags(
      args,
      {
        backend: { type: "string" },
        model: { type: "string" },
        tokenizer: { type: "string" },
        "tokens-file": { type: "string" },
        out: { type: "string" },
        ...selfExtendFlags,
      },
      "logits",
    );
    const tokensPath = requireInputFile("tokens-file", stringFlag(values, "tokens-file", true)!);
    // Checked now, not after the computation: a mistyped folder must not cost the whole run.
    const outPath = requireOutputFile("out", stringFlag(values, "out", true)!);
    let tokens: unknown;
    try {
      tokens = JSON.parse(readFileSync(tokensPath, "utf8"));
    } catch (error) {
      throw new CliUsageError(`--tokens-file ${tokensPath}: ${(error as Error).message.split("\n")[0]}`);
    }
    if (
      !Array.isArray(tokens) ||
      tokens.length === 0 ||
      !tokens.every((token) => Number.isInteger(token) && token >= 0)
    ) {
      throw new CliUsageError(
        `--tokens-file ${tokensPath} must hold a non-empty JSON array of token ids (integers >= 0)`,
      );
    }
    const backend = await chooseBackend(stringFlag(values, "backend") ?? "reference");
    const input = resolveModelInput({
      model: stringFlag(values, "model"),
      tokenizer: stringFlag(values, "tokenizer"),
    });
    const outOfRange = tokens.find((token) => token >= input.vocabularySize);
    if (outOfRange !== undefined) {
      throw new CliUsageError(`token id ${outOfRange} is outside the vocabulary of ${input.vocabularySize}`);
    }
    const { config, note } = selfExtendFromFlags(values, input.trainedContext, tokens.length);
    terminal.error(
      `${backend.name}: ${tokens.length} tokens, trained context ${input.trainedContext}, ${note}\n`,
    );
    const model = await backend.loadModel({ path: input.ggufPath });
    const session = await model.createSession({ selfExtend: config, contextSize: tokens.length });
    const progress = createProgress(terminal, "logits");
    try {
      const evaluation = await session.evaluate(tokens, {
        logits: "all",
        signal: interruptSignal(),
        onProgress: ({ evaluated, total }) => progress.update(evaluated, total),
      });
      progress.done();
      writeNpyFloat32(outPath, evaluation.logits, [tokens.length, evaluation.vocabularySize]);
      const kind =
        evaluation.logitKind === "log-probabilities"
          ? "log-probabilities (this runtime exposes no raw logits)"
          : "logits";
      terminal.error(`wrote ${outPath} (${tokens.length} x ${evaluation.vocabularySize} float32 ${kind})\n`);
    } finally {
      await session.dispose();
      await model.dispose();
    }
    return 0;
  },
};
