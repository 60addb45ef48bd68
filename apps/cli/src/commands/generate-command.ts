import { readFileSync } from "node:fs";
import { generateTokens } from "@self-extend/core";
import { chooseBackend, selfExtendFlags, selfExtendFromFlags } from "../backend-choice.js";
import { integerFlag, numberFlag, parseFlags, stringFlag } from "../cli-arguments.js";
import { CliUsageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { requireInputFile } from "../input-paths.js";
import { interruptSignal } from "../interrupt.js";
import { openModel } from "../model-input.js";

export const generateCommand: Command = {
  name: "generate",
  summary: "generate text with Self-Extend on any backend, streamed",
  usage: `self-extend generate [--backend reference] [--model <gguf, llama2.c .bin or ONNX export>] [--tokenizer <tok.bin>]
                     (--prompt <text> | --prompt-file <file>) [--group G --window W | --no-extend]
                     [--max-tokens N] [--temperature T] [--seed S] [--json [--echo-prompt]]

Streams the continuation of the prompt to stdout. Without --group/--window the planner picks
settings for prompt + max tokens (plain attention when that fits in the trained context).
Without --model, the demo model (@self-extend/demo-model) is used. An ONNX export (a folder with
model.onnx or onnx/model.onnx, from Optimum, onnxruntime-genai or transformers.js) runs on
--backend onnxruntime, with the tokenizer.json beside it.

  --backend <name>    reference (default), llama-cpp, onnxruntime, webgpu
  --max-tokens N      tokens to generate (default 256)
  --temperature T     0 (default) is greedy
  --seed S            seed for sampling (default 0)
  --json              print {"tokens":[...],"text":"..."} (generated tokens only) instead of streaming
  --echo-prompt       with --json, also print "promptTokens" (the prompt as tokenized, BOS included)
                      and "promptText" (those tokens decoded again), to check the tokenizer's round trip`,
  async run(args, terminal) {
    const { values } = parseFlags(
      args,
      {
        backend: { type: "string" },
        model: { type: "string" },
        tokenizer: { type: "string" },
        prompt: { type: "string" },
        "prompt-file": { type: "string" },
        "max-tokens": { type: "string" },
        temperature: { type: "string" },
        seed: { type: "string" },
        json: { type: "boolean" },
        "echo-prompt": { type: "boolean" },
        ...selfExtendFlags,
      },
      "generate",
    );
    if (values.prompt !== undefined && values["prompt-file"] !== undefined) {
      throw new CliUsageError("give only one of --prompt and --prompt-file");
    }
    const promptFile = stringFlag(values, "prompt-file");
    const promptText =
      promptFile !== undefined
        ? readFileSync(requireInputFile("prompt-file", promptFile), "utf8")
        : stringFlag(values, "prompt");
    if (promptText === undefined) throw new CliUsageError("give --prompt <text> or --prompt-file <file>");
    if (values["echo-prompt"] && !values.json) throw new CliUsageError("--echo-prompt needs --json");
    const maxTokens = integerFlag(values, "max-tokens") ?? 256;
    const temperature = numberFlag(values, "temperature") ?? 0;
    if (temperature < 0) throw new CliUsageError(`--temperature ${temperature} must be >= 0 (0 is greedy)`);
    const seed = integerFlag(values, "seed", { smallest: 0 }) ?? 0;
    const backend = await chooseBackend(stringFlag(values, "backend") ?? "reference");
    const input = await openModel(backend, {
      model: stringFlag(values, "model"),
      tokenizer: stringFlag(values, "tokenizer"),
    });
    const prompt = input.tokenizer.encode(promptText, { addBos: true });
    const { config, note } = selfExtendFromFlags(values, input.trainedContext, prompt.length + maxTokens);
    terminal.error(
      `${backend.name}: ${prompt.length} prompt tokens, trained context ${input.trainedContext}, ${note}\n`,
    );

    const model = await input.load();
    const session = await model.createSession({ selfExtend: config, contextSize: prompt.length + maxTokens });
    const generated: number[] = [];
    let printed = "";
    try {
      const stream = generateTokens(session, prompt, {
        maxTokens,
        temperature,
        seed,
        // A byte-level BPE vocabulary may name no EOS; then only maxTokens ends the run.
        stopTokens: input.tokenizer.eosToken === undefined ? [] : [input.tokenizer.eosToken],
        signal: interruptSignal(),
      });
      for await (const token of stream) {
        generated.push(token);
        if (values.json) continue;
        // Decode everything so far and print the new part: pieces can end inside a UTF-8 sequence.
        const text = input.tokenizer.decode([...prompt, ...generated]);
        if (!text.endsWith("\uFFFD")) {
          terminal.out(
            text.slice(printed.length === 0 ? input.tokenizer.decode(prompt).length : printed.length),
          );
          printed = text;
        }
      }
    } finally {
      await session.dispose();
      await model.dispose();
    }
    if (values.json) {
      const output = { tokens: generated, text: input.tokenizer.decode(generated) };
      // Added after the fields --json always had, so readers of the shorter shape are unaffected.
      const echo = values["echo-prompt"]
        ? { promptTokens: prompt, promptText: input.tokenizer.decode(prompt) }
        : {};
      terminal.out(`${JSON.stringify({ ...output, ...echo })}\n`);
    } else {
      terminal.out("\n");
    }
    return 0;
  },
};
