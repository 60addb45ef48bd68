import { registeredBackends } from "@self-extend/backends";
import {
  type AttentionMode,
  attentionModes,
  planSelfExtend,
  type SelfExtendConfig,
  validateBackendSettings,
  validateSessionForModel,
} from "@self-extend/core";
import {
  runSpeedBenchmark,
  type SpeedBenchmarkRow,
  speedBenchmarkHeader,
  speedBenchmarkLine,
} from "@self-extend/evaluation";
import { chooseBackend, selfExtendFlags } from "../backend-choice.js";
import { integerFlag, parseFlags, stringFlag } from "../cli-arguments.js";
import { CliUsageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { resolveModelInput } from "../model-input.js";

interface BackendResult {
  readonly backend: string;
  readonly rows?: readonly SpeedBenchmarkRow[];
  /** Why the backend was not measured on this machine. */
  readonly notAvailable?: string;
}

function parseMultiples(text: string): number[] {
  const multiples = text.split(",").map((part) => Number(part.trim()));
  for (const [index, multiple] of multiples.entries()) {
    if (!(Number.isFinite(multiple) && multiple > 0)) {
      throw new CliUsageError(
        `--multiples ${JSON.stringify(text)}: ${JSON.stringify(text.split(",")[index])} is not a positive number (give e.g. 1,2,4,8)`,
      );
    }
  }
  return multiples;
}

function parseMode(text: string | undefined): AttentionMode | undefined {
  if (text === undefined) return undefined;
  const mode = attentionModes.find((candidate) => candidate === text);
  if (mode === undefined) {
    throw new CliUsageError(
      `--mode ${JSON.stringify(text)} is not a mode; give one of ${attentionModes.join(", ")}`,
    );
  }
  return mode;
}

function parseBackends(text: string): string[] {
  if (text === "all") return registeredBackends.map((entry) => entry.name);
  const names = text.split(",").map((part) => part.trim());
  for (const name of names) {
    if (!registeredBackends.some((entry) => entry.name === name)) {
      throw new CliUsageError(
        `unknown --backend ${JSON.stringify(name)}; known: ${registeredBackends.map((entry) => entry.name).join(", ")}, or all`,
      );
    }
  }
  return names;
}

export const benchCommand: Command = {
  name: "bench",
  summary: "time Self-Extend against plain attention on each backend, as ratios measured in one run",
  usage: `self-extend bench [--backend all | name[,name...]] [--model <gguf or llama2.c .bin>] [--tokenizer <tok.bin>]
                  [--multiples 1,2,4,8] [--decode N] [--repeat N] [--group G --window W]
                  [--mode exact|fast-prefill|llama.cpp-compatible] [--json]

For each backend and each context N = multiple x L (L: the model's trained context), evaluates a
prompt of N - decode tokens (prefill), then decodes --decode tokens one at a time, once with
Self-Extend and once with plain attention (G = 1) on the same adapter and model. The two sessions
run side by side, taking turns (prompts of 4096 tokens or more in up to 8 parts of at least 2048,
the decode in blocks of 8 tokens), so both hold their KV cache at once. Prefill keeps the fastest
repeat; decode tokens/s comes from the median decode step over all repeats. Prints tokens/s, the
time ratio Self-Extend / plain (1.15 = 15% slower) and the KV cache size. Backends that cannot run here are listed with the reason.
Without --model, the demo model (@self-extend/demo-model) is used.

  --backend          all (default) or a comma list of reference, llama-cpp, onnxruntime, webgpu
  --multiples        contexts as multiples of L (default 1,2,4,8)
  --decode N         tokens decoded one at a time after the prompt (default 32)
  --repeat N         repeats: fastest prefill kept, decode steps pooled (default 3)
  --group/--window   Self-Extend settings (default: the planner's for the largest context)
  --mode M           the Self-Extend session's attention mode (default: each backend's, exact);
                     plain attention keeps the default. Backends without the mode are listed as
                     not available (only llama-cpp runs fast-prefill and llama.cpp-compatible)
  --json             print {"model","trainedContext","selfExtend","decodeTokens","repeats",["mode",]
                     "results":[{"backend","rows":[{"multiple","contextSize","plain","selfExtend",
                     "prefillTimeRatio","decodeTimeRatio"}]} or {"backend","notAvailable"}]}`,
  async run(args, terminal) {
    const { values } = parseFlags(
      args,
      {
        backend: { type: "string" },
        model: { type: "string" },
        tokenizer: { type: "string" },
        multiples: { type: "string" },
        decode: { type: "string" },
        repeat: { type: "string" },
        mode: { type: "string" },
        json: { type: "boolean" },
        ...selfExtendFlags,
      },
      "bench",
    );
    if (values["no-extend"])
      throw new CliUsageError("bench always measures plain attention beside Self-Extend; drop --no-extend");
    const backends = parseBackends(stringFlag(values, "backend") ?? "all");
    const multiples = parseMultiples(stringFlag(values, "multiples") ?? "1,2,4,8");
    const decodeTokens = integerFlag(values, "decode") ?? 32;
    const repeats = integerFlag(values, "repeat", { largest: 100 }) ?? 3;
    const mode = parseMode(stringFlag(values, "mode"));
    const input = resolveModelInput({
      model: stringFlag(values, "model"),
      tokenizer: stringFlag(values, "tokenizer"),
    });
    const largestContext = Math.round(Math.max(...multiples) * input.trainedContext);
    const group = integerFlag(values, "group");
    const window = integerFlag(values, "window");
    if ((group === undefined) !== (window === undefined))
      throw new CliUsageError("--group and --window go together");
    const selfExtend: SelfExtendConfig =
      group !== undefined && window !== undefined
        ? { groupSize: group, neighborWindow: window }
        : planSelfExtend({ trainedContext: input.trainedContext, targetContext: largestContext }).config;

    const shortestContext = Math.round(Math.min(...multiples) * input.trainedContext);
    if (decodeTokens >= shortestContext) {
      throw new CliUsageError(
        `--decode ${decodeTokens} must be smaller than the shortest context, ${shortestContext} tokens (${Math.min(...multiples)} x L = ${input.trainedContext})`,
      );
    }
    // A setting too short for the longest context is refused before any backend loads.
    validateSessionForModel(
      { selfExtend, contextSize: largestContext },
      { trainedContext: input.trainedContext },
    );

    const log = (line: string) => terminal.error(`${line}\n`);
    log(
      `bench: ${input.ggufPath} (L = ${input.trainedContext}), Self-Extend G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow}${mode === undefined ? "" : `, mode ${mode}`}, ${decodeTokens} decoded tokens, ${repeats === 1 ? "one run" : `${repeats} runs`} side by side`,
    );
    if (!values.json) terminal.out(`${speedBenchmarkHeader}\n`);
    const results: BackendResult[] = [];
    for (const name of backends) {
      let backend: Awaited<ReturnType<typeof chooseBackend>>;
      try {
        backend = await chooseBackend(name);
        validateBackendSettings({ mode }, backend.capabilities, name);
      } catch (error) {
        const reason = (error as Error).message;
        results.push({ backend: name, notAvailable: reason });
        if (!values.json) terminal.out(`${name} | not available: ${reason}\n`);
        continue;
      }
      const model = await backend.loadModel({ path: input.ggufPath });
      try {
        const rows = await runSpeedBenchmark(model, {
          selfExtend,
          multiples,
          decodeTokens,
          repeats,
          ...(mode === undefined ? {} : { selfExtendSessionOptions: { mode } }),
          onRow: (row) => {
            if (!values.json) terminal.out(`${speedBenchmarkLine(name, row)}\n`);
            else log(`${name}: ${row.multiple}x done`);
          },
        });
        results.push({ backend: name, rows });
      } finally {
        await model.dispose();
      }
    }
    if (values.json) {
      terminal.out(
        `${JSON.stringify({
          model: input.ggufPath,
          trainedContext: input.trainedContext,
          selfExtend,
          decodeTokens,
          repeats,
          ...(mode === undefined ? {} : { mode }),
          results,
        })}\n`,
      );
    }
    return 0;
  },
};
