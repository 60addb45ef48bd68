/**
 * The relative positions llama.cpp actually used, read from its KV cache, not recomputed: a real
 * Self-Extend context (the mode's own scheduler on a node-llama-cpp context) evaluates a prompt,
 * and after every llama_decode the position of every cell is read back through the native bridge
 * (llama.cpp's sequence state). Nothing moves during a decode, so the queries of that decode saw
 * exactly those positions: r(i, j) = position of cell i - position of cell j, for j <= i.
 *
 * Cells hold tokens in order (one sequence, filled from an empty cache, never removed), which is
 * checked: the cells a decode adds must sit at the positions it was given.
 */
import { existsSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AttentionMode,
  type SelfExtendConfig,
  SelfExtendError,
  validateSelfExtendConfig,
} from "@self-extend/core";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { SelfExtendContext } from "./llama-cpp-session.js";
import { NativeSequence } from "./node-llama-cpp-internals.js";

/**
 * A generated model whose trained context admits the setting: positions do not depend on the
 * weights, only on the scheduler and llama.cpp's cache.
 */
function positionModelPath(trainedContext: number): string {
  const path = join(tmpdir(), `self-extend-llama-cpp-positions-L${trainedContext}.gguf`);
  if (!existsSync(path)) {
    // Written under a private name and renamed: a process that finds the path finds a whole file.
    const temporary = `${path}.${process.pid}.tmp`;
    writeLlamaGguf(temporary, generateTinyModel({ ...tinyModelSpec("llama-h8-mha"), trainedContext }, 1), {
      name: "positions",
    });
    renameSync(temporary, path);
  }
  return path;
}

export async function llamaCppRelativePositions(
  config: SelfExtendConfig,
  length: number,
  options: { readonly mode?: AttentionMode; readonly threads?: number } = {},
): Promise<Int32Array> {
  const { groupSize, neighborWindow } = validateSelfExtendConfig(config);
  if (!Number.isSafeInteger(length) || length < 1) {
    throw new RangeError(`length must be an integer >= 1 (got ${length})`);
  }
  const trainedContext = Math.max(64, length, neighborWindow + 1);
  const context = await SelfExtendContext.create({
    model: positionModelPath(trainedContext),
    groupSize,
    neighborWindow,
    contextSize: length,
    mode: options.mode,
    threads: options.threads ?? 1,
  });
  try {
    const sequence: unknown = Reflect.get(context, "sequence");
    if (!(sequence instanceof NativeSequence)) {
      throw new SelfExtendError("internal error: the context's native sequence is not where it is expected");
    }
    const map = new Int32Array(length * length).fill(-1);
    const decode = sequence.decode.bind(sequence);
    sequence.decode = async (tokens, firstPosition, logitIndexes, vocabularySize) => {
      const rows = await decode(tokens, firstPosition, logitIndexes, vocabularySize);
      const cells = sequence.cellPositions();
      const first = cells.length - tokens.length;
      for (let index = 0; index < tokens.length; index++) {
        if (cells[first + index] !== firstPosition + index) {
          throw new SelfExtendError(
            `internal error: cell ${first + index} holds position ${cells[first + index]}, decoded at ${firstPosition + index}`,
          );
        }
      }
      for (let query = first; query < cells.length; query++) {
        for (let key = 0; key <= query; key++) map[query * length + key] = cells[query] - cells[key];
      }
      return rows;
    };
    const vocabularySize = context.vocabularySize;
    await context.evaluate(
      Array.from({ length }, (_, index) => 3 + (index % (vocabularySize - 3))),
      { logits: "last" },
    );
    return map;
  } finally {
    await context.dispose();
  }
}
