import { relativePositionMap, validateSelfExtendConfig } from "@self-extend/core";
import { integerFlag, parseFlags } from "../cli-arguments.js";
import type { Command } from "../command.js";

/** The map is printed whole: N x N numbers. 4096 is already 16.8 million of them. */
const largestPrintedLength = 4096;

export const mapCommand: Command = {
  name: "map",
  summary: "print the N x N Self-Extend relative-position map",
  usage: `self-extend map --group G --window W --length N [--json]

Prints r(i, j) for query rows i and key columns j (lower triangle; keys after the query are
masked). With --json: {"group":G,"window":W,"length":N,"map":[[...],...]} with -1 above the diagonal.

  --group G     group size (>= 1; 1 is plain attention)
  --window W    neighbor window (a multiple of G)
  --length N    number of tokens (at most ${largestPrintedLength})`,
  async run(args, terminal) {
    const { values } = parseFlags(
      args,
      {
        group: { type: "string" },
        window: { type: "string" },
        length: { type: "string" },
        json: { type: "boolean" },
      },
      "map",
    );
    const group = integerFlag(values, "group", { required: true })!;
    const window = integerFlag(values, "window", { required: true })!;
    const length = integerFlag(values, "length", {
      required: true,
      largest: largestPrintedLength,
      why: "the map has N x N entries",
    })!;
    const config = validateSelfExtendConfig({ groupSize: group, neighborWindow: window });
    const map = relativePositionMap(config, length);
    const rows = Array.from({ length }, (_, i) => Array.from(map.subarray(i * length, (i + 1) * length)));
    if (values.json) {
      terminal.out(`${JSON.stringify({ group, window, length, map: rows })}\n`);
      return 0;
    }
    const width = Math.max(String(Math.max(...map)).length, String(length - 1).length);
    const cell = (text: string | number) => String(text).padStart(width);
    const label = " ".repeat(String(length - 1).length);
    terminal.out(`G = ${group}, W = ${window}, N = ${length}; row i = query, column j = key\n`);
    terminal.out(`${label} | ${rows.map((_, j) => cell(j)).join(" ")}\n`);
    terminal.out(`${"-".repeat(label.length)}-+-${"-".repeat(length * (width + 1) - 1)}\n`);
    rows.forEach((row, i) => {
      const cells = row.map((value) => (value < 0 ? cell("") : cell(value)));
      terminal.out(`${String(i).padStart(label.length)} | ${cells.join(" ").trimEnd()}\n`);
    });
    return 0;
  },
};
