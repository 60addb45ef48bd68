/**
 * Runs the bad-input table (bad-inputs.json): every row must give a one-line error that contains
 * the expected fragment (which names the value and the rule), the expected exit code or error
 * class, no stack trace, and leave no file behind in the fixture folder.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  assertTokensInVocabulary,
  assertWithinUsableContext,
  createSelfExtendConfig,
  largestRelativePosition,
  planSelfExtend,
  relativePositionMap,
  validateSelfExtendConfig,
} from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import { planEvaluationRuns, scoredTokenCount } from "@self-extend/evaluation";
import {
  importLlama2c,
  readGguf,
  readLlama2cCheckpoint,
  readLlama2cTokenizer,
  syntheticVocabulary,
  tinyModelSpec,
  writeGguf,
} from "@self-extend/models/node";
import { sharedModelPaths, sharedPath } from "@self-extend/test-fixtures";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

interface CliRow {
  readonly command: string;
  readonly args: readonly string[];
  readonly exitCode: number;
  readonly message: string;
  readonly throughBin?: boolean;
}
interface ApiRow {
  readonly function: string;
  readonly args: readonly unknown[];
  readonly error: string;
  readonly message: string;
}

const table = JSON.parse(readFileSync(join(import.meta.dirname, "bad-inputs.json"), "utf8")) as {
  cli: CliRow[];
  api: ApiRow[];
};

// The public functions the API rows name; the table holds only their names and arguments.
const publicFunctions: Record<string, (...args: never[]) => unknown> = {
  assertTokensInVocabulary,
  assertWithinUsableContext,
  createSelfExtendConfig,
  importLlama2c,
  largestRelativePosition,
  planEvaluationRuns,
  planSelfExtend,
  readGguf,
  readLlama2cCheckpoint,
  readLlama2cTokenizer,
  relativePositionMap,
  scoredTokenCount,
  syntheticVocabulary,
  tinyModelSpec,
  validateSelfExtendConfig,
  writeGguf,
};

const builtBin = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

/** Every file and folder under `folder`, relative, sorted. */
function listTree(folder: string, prefix = ""): string[] {
  return readdirSync(folder)
    .sort()
    .flatMap((name) => {
      const relative = join(prefix, name);
      return statSync(join(folder, name)).isDirectory()
        ? [`${relative}/`, ...listTree(join(folder, name), relative)]
        : [relative];
    });
}

function expectOneLineError(stderr: string, fragment: string): void {
  const lines = stderr.trimEnd().split("\n");
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).toContain(fragment);
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr.length).toBeLessThan(1000);
}

describe("bad inputs (bad-inputs.json)", () => {
  // One fixture folder for all rows (rows only read it; each checks that it is unchanged).
  let folder = "";
  let fixtureTree: string[] = [];
  const substitute = <T>(value: T): T =>
    JSON.parse(JSON.stringify(value).replaceAll("$DIR", folder).replaceAll("$SHARED", sharedPath())) as T;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), "self-extend-bad-inputs-"));
    mkdirSync(join(folder, "folder"));
    writeFileSync(join(folder, "empty.gguf"), "");
    writeFileSync(join(folder, "truncated.gguf"), readFileSync(demoModelPath).subarray(0, 2000));
    writeFileSync(
      join(folder, "truncated.bin"),
      readFileSync(sharedModelPaths.stories260K).subarray(0, 5000),
    );
    writeFileSync(join(folder, "prompt.txt"), "Once upon a time");
    writeFileSync(join(folder, "tokens.json"), "[1, 2, 3]");
    writeFileSync(join(folder, "not-json.json"), "not json");
    writeFileSync(join(folder, "negative-tokens.json"), "[1, -1]");
    writeFileSync(join(folder, "large-token.json"), "[1, 99999]");
    writeFileSync(join(folder, "a-file"), "not a folder");
    fixtureTree = listTree(folder);
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it("has at least 60 rows covering every command", () => {
    expect(table.cli.length + table.api.length).toBeGreaterThanOrEqual(60);
    const commands = new Set(table.cli.map((row) => row.command));
    for (const command of ["conformance", "generate", "eval", "logits", "import-llama2c", "plan", "map"]) {
      expect(commands, command).toContain(command);
    }
  });

  for (const row of table.cli) {
    it(`self-extend ${row.args.join(" ")} -> exit ${row.exitCode}`, async () => {
      const args = substitute([...row.args]);
      const terminal = captureTerminal();
      const code = await runCli(args, terminal);
      expect({ code, stderr: terminal.stderr }).toMatchObject({ code: row.exitCode });
      expectOneLineError(terminal.stderr, substitute(row.message));
      expect(terminal.stdout).toBe("");
      expect(listTree(folder)).toEqual(fixtureTree);
    });
  }

  for (const row of table.api) {
    it(`${row.function}(${JSON.stringify(row.args).slice(1, -1)}) -> ${row.error}`, () => {
      const call = publicFunctions[row.function];
      expect(call, row.function).toBeDefined();
      let caught: unknown;
      try {
        (call as (...args: unknown[]) => unknown)(...substitute([...row.args]));
      } catch (error) {
        caught = error;
      }
      expect((caught as Error)?.name).toBe(row.error);
      expectOneLineError((caught as Error).message, substitute(row.message));
      expect(listTree(folder)).toEqual(fixtureTree);
    });
  }

  describe("through the built bin, in a child process", () => {
    for (const row of table.cli.filter((candidate) => candidate.throughBin)) {
      it(`self-extend ${row.args.join(" ")} -> exit ${row.exitCode}`, () => {
        const result = spawnSync(process.execPath, [builtBin, ...substitute([...row.args])], {
          encoding: "utf8",
        });
        expect({ status: result.status, stderr: result.stderr }).toMatchObject({ status: row.exitCode });
        expectOneLineError(result.stderr, substitute(row.message));
        expect(result.stdout).toBe("");
        expect(listTree(folder)).toEqual(fixtureTree);
      });
    }
  });
});
