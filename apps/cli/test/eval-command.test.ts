import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { findAll, parseXml, sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

async function cliAsGiven(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

/** These tests measure stories260K (its numbers are in the spec); the CLI's default is the demo model. */
async function cli(...args: string[]) {
  const evaluation = args[0] === "eval" && (args[1] === "ppl" || args[1] === "passkey");
  return cliAsGiven(...args, ...(evaluation && !args.includes("--model") ? stories : []));
}

const modelSha256 = createHash("sha256").update(readFileSync(sharedModelPaths.stories260K)).digest("hex");
// Short lengths and few tokens keep these fast; the full table runs in packages/evaluation.
const stories = ["--model", sharedModelPaths.stories260K, "--tokenizer", sharedModelPaths.tokenizer];
const quickPerplexity = ["eval", "ppl", ...stories, "--lengths", "64,128", "--tokens", "256"];
const quickPasskey = [
  "eval",
  "passkey",
  ...stories,
  "--lengths",
  "160",
  "--depths",
  "0,1",
  "--trials",
  "2",
  "--introduction",
  "",
  "--answer-tokens",
  "4",
];

describe("self-extend eval: the default model", () => {
  it("evaluates the demo model when no --model is given", async () => {
    const result = await cliAsGiven("eval", "ppl", "--lengths", "64,128", "--tokens", "256", "--json");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.model.trainedContext).toBe(256);
    expect(report.model.path).toMatch(/demo-model\.gguf$/);
  });
});

describe("self-extend eval: flags", () => {
  it("lists eval in the overview and prints its usage", async () => {
    expect((await cli("--help")).stdout).toMatch(/\n {2}eval +long-context evaluation/);
    const help = await cli("eval", "--help");
    expect(help.code).toBe(0);
    for (const flag of [
      "--backend",
      "--model",
      "--tokenizer",
      "--text",
      "--lengths",
      "--group",
      "--window",
      "--compare-plain",
      "--json",
      "--plot",
      "--depths",
      "--trials",
    ]) {
      expect(help.stdout).toContain(flag);
    }
  });

  it.each([
    [["eval"], /give a subcommand/],
    [["eval", "perplexity"], /unknown subcommand "perplexity"/],
    [["eval", "ppl", "--lengths", "512,abc"], /--lengths: "abc" is not an integer/],
    [["eval", "ppl", "--lengths", "512,512"], /repeats/],
    [["eval", "ppl", "--group", "4"], /--group and --window go together/],
    [["eval", "ppl", "--lengths", "64", "--tokens", "10"], /too few/],
    [["eval", "ppl", "--text", "/nonexistent/text.txt", "--lengths", "64"], /--text/],
    [["eval", "ppl", "--depths", "0.5"], /Unknown option '--depths'/],
    [["eval", "passkey", "--depths", "0,1.5"], /--depths: "1.5" is not a number between 0 and 1/],
    [["eval", "passkey", "--trials", "0"], /--trials 0 must be >= 1/],
    [["eval", "passkey", "--backend", "nope"], /unknown --backend "nope"/],
  ])("%j is a usage error", { timeout: 60_000 }, async (args, message) => {
    const result = await cli(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("refuses a (G, W) that W % G != 0 makes invalid", async () => {
    const result = await cli(...quickPerplexity, "--group", "3", "--window", "16");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/neighborWindow|groupSize/);
  });
});

describe("self-extend eval ppl", () => {
  const temporary = useTemporaryFolder();

  it("--json carries the command line, model hash, backend, settings and per-cell numbers; --out and --plot match", async () => {
    const folder = temporary();
    const out = join(folder, "ppl.json");
    const plot = join(folder, "ppl.svg");
    const args = [
      ...quickPerplexity,
      "--group",
      "2",
      "--window",
      "16",
      "--compare-plain",
      "--json",
      "--out",
      out,
      "--plot",
      plot,
    ];
    const result = await cli(...args);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(Object.keys(report)).toEqual([
      "evaluation",
      "formatVersion",
      "commandLine",
      "startedAt",
      "backend",
      "model",
      "settings",
      "finishedAt",
      "complete",
      "cells",
    ]);
    expect(report).toMatchObject({
      evaluation: "perplexity",
      formatVersion: 1,
      commandLine: ["self-extend", ...args],
      backend: "reference",
      complete: true,
      model: {
        path: sharedModelPaths.stories260K,
        sha256: modelSha256,
        architecture: "llama",
        trainedContext: 512,
        vocabularySize: 512,
      },
      settings: {
        text: sharedModelPaths.validationText,
        scoredTokens: 256,
        lengths: [64, 128],
        documentTokens: 126_048,
        comparePlain: true,
      },
    });
    expect(report.settings.selfExtend).toEqual({ groupSize: 2, neighborWindow: 16 });
    expect(
      report.cells.map((cell: { length: number; method: string; predictionCount: number }) => [
        cell.length,
        cell.method,
        cell.predictionCount,
      ]),
    ).toEqual([
      [64, "self-extend", 256],
      [64, "plain", 256],
      [128, "self-extend", 256],
      [128, "plain", 256],
    ]);
    for (const cell of report.cells) {
      expect(cell.perplexity).toBeGreaterThan(1);
      expect(cell.perplexity).toBeLessThan(20);
      expect(cell.buckets[0]).toMatchObject({ start: 0, end: cell.length, predictionCount: 256 });
      expect(cell.curve.meanNegativeLogLikelihood.length).toBe(cell.length / cell.curve.bucketWidth);
    }
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(report);
    const svg = parseXml(readFileSync(plot, "utf8"));
    expect(svg.name).toBe("svg");
    expect(findAll(svg, "polyline")).toHaveLength(4);
    expect(readdirSync(folder).sort()).toEqual(["ppl.json", "ppl.svg"]);
    expect(result.stderr).toContain("eval ppl [");
    expect(result.stderr).toMatch(/left/);
  }, 120_000);

  it("prints a table by position bucket, planning per length without --group/--window", async () => {
    const result = await cli("eval", "ppl", "--lengths", "64,576", "--tokens", "576", "--compare-plain");
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^length +method +PPL +0-63 +0-511 +512-575$/);
    expect(lines.slice(1).map((line) => line.trim().split(/ {2,}/).slice(0, 2))).toEqual([
      ["64", "plain"],
      ["576", "Self-Extend G=2 W=108"],
      ["576", "plain"],
    ]);
    expect(result.stderr).toContain("(planned)");
    expect(result.stderr).toContain("largest relative position 575 > L - 1 = 511");
  }, 120_000);

  it("keeps the finished cells, in a valid file, when interrupted (Ctrl-C)", async () => {
    const folder = temporary();
    const out = join(folder, "ppl.json");
    const plot = join(folder, "ppl.svg");
    const running = cli(
      "eval",
      "ppl",
      "--lengths",
      "64,128,256",
      "--tokens",
      "512",
      "--json",
      "--out",
      out,
      "--plot",
      plot,
    );
    // Wait for the first finished cell on disk, then interrupt as Ctrl-C would.
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (existsSync(out) && JSON.parse(readFileSync(out, "utf8")).cells.length > 0) break;
    }
    process.emit("SIGINT");
    const result = await running;
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/interrupted: kept [12] finished cell/);
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report.complete).toBe(false);
    expect(report.cells.length).toBeGreaterThanOrEqual(1);
    expect(report.cells.length).toBeLessThan(3);
    expect(JSON.parse(result.stdout)).toEqual(report);
    expect(findAll(parseXml(readFileSync(plot, "utf8")), "polyline")).toHaveLength(report.cells.length);
    expect(readdirSync(folder).sort()).toEqual(["ppl.json", "ppl.svg"]);
  }, 120_000);
});

describe("self-extend eval passkey", () => {
  const temporary = useTemporaryFolder();

  it("--json carries settings and per-cell trials; --plot is a heatmap", async () => {
    const folder = temporary();
    const plot = join(folder, "passkey.svg");
    const args = [
      ...quickPasskey,
      "--seed",
      "5",
      "--compare-plain",
      "--group",
      "2",
      "--window",
      "32",
      "--json",
      "--plot",
      plot,
    ];
    const result = await cli(...args);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      evaluation: "passkey",
      commandLine: ["self-extend", ...args],
      backend: "reference",
      complete: true,
      model: { sha256: modelSha256, trainedContext: 512 },
      settings: {
        lengths: [160],
        depths: [0, 1],
        trials: 2,
        seed: 5,
        answerTokens: 4,
        filler: "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.",
        question: "What is the pass key? The pass key is",
        introduction: "",
        selfExtend: { groupSize: 2, neighborWindow: 32 },
        comparePlain: true,
      },
    });
    expect(report.cells.map((cell: { method: string; depth: number }) => [cell.method, cell.depth])).toEqual([
      ["self-extend", 0],
      ["self-extend", 1],
      ["plain", 0],
      ["plain", 1],
    ]);
    for (const cell of report.cells) {
      expect(cell.trials).toHaveLength(2);
      expect(cell.accuracy).toBe(cell.trials.filter((trial: { found: boolean }) => trial.found).length / 2);
      for (const trial of cell.trials) expect(trial.key).toMatch(/^\d{5}$/);
    }
    const svg = parseXml(readFileSync(plot, "utf8"));
    expect(
      findAll(svg, "rect").filter((rect) => rect.attributes["data-accuracy"] !== undefined),
    ).toHaveLength(4);
  }, 120_000);

  it("prints an accuracy table by length x depth", async () => {
    const result = await cli(...quickPasskey);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^length +method +d=0 +d=1 +all$/);
    expect(lines[1]).toMatch(/^ +160 +plain +\d+% +\d+% +\d+%$/);
  }, 120_000);
});
