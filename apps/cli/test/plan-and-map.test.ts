import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { largestRelativePosition, relativePosition } from "@self-extend/core";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

async function cli(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

describe("self-extend plan", () => {
  it("prints a plan whose positions stay within the trained context", async () => {
    const { code, stdout } = await cli(
      "plan",
      "--trained-context",
      "512",
      "--target-context",
      "2048",
      "--json",
    );
    expect(code).toBe(0);
    const plan = JSON.parse(stdout);
    expect(Object.keys(plan)).toEqual([
      "trainedContext",
      "targetContext",
      "groupSize",
      "neighborWindow",
      "largestRelativePosition",
      "largestUsableContext",
      "plainAttention",
      "reason",
    ]);
    const config = { groupSize: plan.groupSize, neighborWindow: plan.neighborWindow };
    expect(plan.largestRelativePosition).toBe(largestRelativePosition(2048, config));
    expect(plan.largestRelativePosition).toBeLessThanOrEqual(511);
    expect(plan.largestUsableContext).toBe(
      (512 - plan.neighborWindow) * plan.groupSize + plan.neighborWindow,
    );
  });

  it("ignores the `--` that package-manager scripts pass through", async () => {
    const { code, stdout } = await cli(
      "plan",
      "--",
      "--trained-context",
      "512",
      "--target-context",
      "1024",
      "--json",
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout).targetContext).toBe(1024);
  });

  it("prints a readable table by default", async () => {
    const { code, stdout } = await cli("plan", "--trained-context", "4096", "--target-context", "16384");
    expect(code).toBe(0);
    expect(stdout).toMatch(/group size G\s+\d+/);
    expect(stdout).toContain("(L - W) * G + W");
  });

  it.each([
    [["plan", "--trained-context", "512"], 2, "missing --target-context"],
    [
      ["plan", "--trained-context", "abc", "--target-context", "9"],
      2,
      '--trained-context "abc" is not an integer',
    ],
    [["plan", "--trained-context", "64", "--target-context", "100000"], 1, "longest reachable is 1056"],
    [
      ["plan", "--trained-context", "64", "--target-context", "100", "--frobnicate"],
      2,
      "Unknown option '--frobnicate'",
    ],
  ])("%j exits %i with one clear line", async (args, expectedCode, message) => {
    const { code, stdout, stderr } = await cli(...args);
    expect(code).toBe(expectedCode);
    expect(stdout).toBe("");
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain(message);
  });
});

describe("self-extend map", () => {
  it("prints the JSON shape {group, window, length, map} with -1 above the diagonal", async () => {
    const { code, stdout } = await cli("map", "--group", "2", "--window", "4", "--length", "10", "--json");
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(Object.keys(result)).toEqual(["group", "window", "length", "map"]);
    expect(result.map[9]).toEqual([6, 6, 5, 5, 4, 4, 3, 2, 1, 0]);
    expect(result.map[5]).toEqual([4, 4, 3, 2, 1, 0, -1, -1, -1, -1]);
    const config = { groupSize: 3, neighborWindow: 9 };
    const other = JSON.parse(
      (await cli("map", "--group", "3", "--window", "9", "--length", "30", "--json")).stdout,
    );
    for (let i = 0; i < 30; i++) {
      for (let j = 0; j < 30; j++) expect(other.map[i][j]).toBe(j > i ? -1 : relativePosition(i, j, config));
    }
  });

  it("prints a table for small N", async () => {
    const { stdout } = await cli("map", "--group", "2", "--window", "4", "--length", "10");
    const lines = stdout.trim().split("\n");
    expect(lines.at(-1)).toBe("9 | 6 6 5 5 4 4 3 2 1 0");
    expect(lines).toContain("5 | 4 4 3 2 1 0");
  });

  it.each([
    [
      ["map", "--group", "3", "--window", "4", "--length", "8"],
      "neighborWindow = 4 is invalid: must be a multiple of groupSize (3)",
    ],
    [["map", "--group", "0", "--window", "4", "--length", "8"], "--group 0 must be >= 1"],
    [["map", "--window", "4", "--length", "8"], "missing --group"],
  ])("%j fails with one clear line", async (args, message) => {
    const { code, stderr } = await cli(...args);
    expect(code).not.toBe(0);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain(message);
  });
});

describe("help", () => {
  it("lists the commands and each command has --help", async () => {
    const overview = await cli("--help");
    expect(overview.code).toBe(0);
    for (const name of ["plan", "map"]) {
      expect(overview.stdout).toContain(name);
      const help = await cli(name, "--help");
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`self-extend ${name}`);
    }
    const unknown = await cli("frobnicate");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });
});

const builtBin = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

describe("the built bin", () => {
  it("exists after the build (the root test script builds first)", () => {
    expect(existsSync(builtBin)).toBe(true);
  });

  it("runs as a process with the same output and exit codes", () => {
    const output = execFileSync(
      process.execPath,
      [builtBin, "map", "--group", "2", "--window", "4", "--length", "3", "--json"],
      {
        encoding: "utf8",
      },
    );
    expect(JSON.parse(output)).toEqual({
      group: 2,
      window: 4,
      length: 3,
      map: [
        [0, -1, -1],
        [1, 0, -1],
        [2, 1, 0],
      ],
    });
    const failed = spawnSync(
      process.execPath,
      [builtBin, "map", "--group", "3", "--window", "4", "--length", "3"],
      {
        encoding: "utf8",
      },
    );
    expect(failed.status).toBe(1);
    expect(failed.stdout).toBe("");
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);
  });
});
