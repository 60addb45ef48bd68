import { existsSync } from "node:fs";
import { importLlama2c } from "@self-extend/models/node";
import { parseFlags, stringFlag } from "../cli-arguments.js";
import { CliUsageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { requireInputFile, requireOutputFile } from "../input-paths.js";

export const importLlama2cCommand: Command = {
  name: "import-llama2c",
  summary: "convert a llama2.c checkpoint and tokenizer to a GGUF that llama.cpp loads",
  usage: `self-extend import-llama2c --checkpoint <model.bin> --tokenizer <tok.bin> --out <model.gguf> [--force]

Writes a GGUF (architecture llama, F32 tensors) with a complete SPM vocabulary (tokens, scores,
token types, BOS/EOS/UNK ids). The same inputs always give byte-identical files. An existing
--out is never overwritten unless --force is given; inputs are never overwritten.`,
  async run(args, terminal) {
    const { values } = parseFlags(
      args,
      {
        checkpoint: { type: "string" },
        tokenizer: { type: "string" },
        out: { type: "string" },
        force: { type: "boolean" },
      },
      "import-llama2c",
    );
    const checkpointPath = requireInputFile("checkpoint", stringFlag(values, "checkpoint", true)!);
    const tokenizerPath = requireInputFile("tokenizer", stringFlag(values, "tokenizer", true)!);
    const outPath = requireOutputFile("out", stringFlag(values, "out", true)!);
    if (existsSync(outPath) && !values.force) {
      throw new CliUsageError(`${outPath} already exists; pass --force to replace it`);
    }
    importLlama2c({ checkpointPath, tokenizerPath, outPath });
    terminal.error(`wrote ${outPath}\n`);
    return 0;
  },
};
