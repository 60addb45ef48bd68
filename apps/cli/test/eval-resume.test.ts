/**
 * `eval --out` resume: an eval interrupted at seeded random points (SIGINT, and SIGKILL, which no
 * handler sees) and then rerun with the same flags ends with the same cells as an uninterrupted
 * run, keeps the cells it had finished, and never leaves a broken file. Runs the built bin in
 * child processes on the demo model with tiny lengths.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

const builtBin = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

interface Report {
  complete: boolean;
  cells: Record<string, unknown>[];
}

/** mulberry32, so every run interrupts at the same points. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/** A cell without its timing, the only field that differs between two runs of the same cell. */
const withoutTiming = (cell: Record<string, unknown>) => {
  const { seconds: _seconds, ...rest } = cell;
  return rest;
};

function readReport(path: string): Report | undefined {
  // The file is replaced by rename only, so whenever it exists it must parse.
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Report) : undefined;
}

function runToEnd(args: readonly string[]): void {
  const result = spawnSync(process.execPath, [builtBin, ...args], { encoding: "utf8" });
  expect(result.status, result.stderr).toBe(0);
}

const sleep = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

/** Starts the eval, waits for `cellsBefore` finished cells in the file plus `delay` ms, then kills it. */
async function interrupt(
  args: readonly string[],
  out: string,
  signal: "SIGINT" | "SIGKILL",
  cellsBefore: number,
  delay: number,
): Promise<number | null> {
  const child: ChildProcess = spawn(process.execPath, [builtBin, ...args], { stdio: "ignore" });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let running = true;
  void exited.then(() => {
    running = false;
  });
  while (running && (readReport(out)?.cells.length ?? 0) < cellsBefore) await sleep(5);
  await sleep(delay);
  if (running) child.kill(signal);
  return exited;
}

describe("self-extend eval --out: resume after an interrupt", () => {
  const temporary = useTemporaryFolder();

  function textFile(folder: string): string {
    const path = join(folder, "text.txt");
    writeFileSync(path, readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 20_000));
    return path;
  }

  const evaluations = [
    {
      name: "ppl",
      args: (folder: string) => [
        "eval",
        "ppl",
        "--text",
        textFile(folder),
        "--lengths",
        "16,32,48,64",
        "--tokens",
        "192",
        "--group",
        "2",
        "--window",
        "8",
        "--compare-plain",
      ],
      cellCount: 8,
    },
    {
      name: "passkey",
      args: () => [
        "eval",
        "passkey",
        "--lengths",
        "80,96",
        "--depths",
        "0,1",
        "--trials",
        "2",
        "--answer-tokens",
        "3",
        "--introduction",
        "",
      ],
      cellCount: 4,
    },
  ];

  for (const evaluation of evaluations) {
    it(`eval ${evaluation.name}: SIGINT and SIGKILL at seeded points, then a rerun, give the uninterrupted cells`, async () => {
      const folder = temporary();
      const args = evaluation.args(folder);
      const baselinePath = join(folder, "baseline.json");
      runToEnd([...args, "--out", baselinePath]);
      const baseline = readReport(baselinePath) as Report;
      expect(baseline.complete).toBe(true);
      expect(baseline.cells).toHaveLength(evaluation.cellCount);

      const random = seededRandom(evaluation.name === "ppl" ? 13 : 31);
      for (const [attempt, signal] of (["SIGINT", "SIGKILL", "SIGINT", "SIGKILL"] as const).entries()) {
        const out = join(folder, `resumed-${attempt}.json`);
        // Between the first and the last cell, so there is always something to keep and to resume.
        const cellsBefore = 1 + Math.floor(random() * (evaluation.cellCount - 1));
        const code = await interrupt(
          [...args, "--out", out],
          out,
          signal,
          cellsBefore,
          Math.floor(random() * 200),
        );
        const interrupted = readReport(out);
        expect(interrupted?.cells.length ?? 0).toBeGreaterThanOrEqual(cellsBefore);
        if (signal === "SIGINT" && code !== 0) expect(code === 130 || code === null).toBe(true);
        runToEnd([...args, "--out", out]);
        const resumed = readReport(out) as Report;
        expect(resumed.complete, `${signal} after ${cellsBefore} cells`).toBe(true);
        expect(resumed.cells.map(withoutTiming)).toEqual(baseline.cells.map(withoutTiming));
        // Finished cells are kept as they were (same timing), not computed again.
        for (const cell of interrupted?.cells ?? []) expect(resumed.cells).toContainEqual(cell);
      }
      // Only the result files: no temporary file is left behind by the killed runs' renames.
      expect(readdirSync(folder).filter((name) => name.startsWith("."))).toEqual([]);
    }, 300_000);
  }

  it("refuses a file of other settings, naming it, and replaces it with --force", async () => {
    const folder = temporary();
    const out = join(folder, "r.json");
    const args = ["eval", "ppl", "--text", textFile(folder), "--tokens", "64", "--out", out];
    const first = captureTerminal();
    expect(await runCli([...args, "--lengths", "16,32"], first)).toBe(0);
    const before = readFileSync(out, "utf8");

    const other = captureTerminal();
    expect(await runCli([...args, "--lengths", "16"], other)).toBe(2);
    expect(other.stderr).toContain(
      `--out ${out} holds results of other settings (there: lengths [16,32]); give a new file or --force to replace it`,
    );
    expect(other.stderr.trim().split("\n")).toHaveLength(1);
    expect(readFileSync(out, "utf8")).toBe(before);

    const again = captureTerminal();
    expect(await runCli([...args, "--lengths", "16,32"], again)).toBe(0);
    expect(again.stderr).toContain("kept 2 finished cell(s), 0 to go");
    expect((JSON.parse(readFileSync(out, "utf8")) as Report).cells).toEqual(
      (JSON.parse(before) as Report).cells,
    );

    const forced = captureTerminal();
    expect(await runCli([...args, "--lengths", "16", "--force"], forced)).toBe(0);
    expect((JSON.parse(readFileSync(out, "utf8")) as Report).cells).toHaveLength(1);
  }, 120_000);
});
