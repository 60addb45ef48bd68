import type { SpeedBenchmarkOptions } from "@self-extend/evaluation";
import { describe, expect, it, vi } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

// What bench hands the shared benchmark loop, recorded; the loop itself runs unchanged (its own
// test, packages/evaluation/test/scale-benchmark.test.ts, proves the options reach the session).
const handedOver = vi.hoisted(() => [] as SpeedBenchmarkOptions[]);
vi.mock("@self-extend/evaluation", async (importOriginal) => {
  const actual = await importOriginal<typeof import("@self-extend/evaluation")>();
  return {
    ...actual,
    runSpeedBenchmark: (
      model: Parameters<typeof actual.runSpeedBenchmark>[0],
      options: SpeedBenchmarkOptions,
    ) => {
      handedOver.push(options);
      return actual.runSpeedBenchmark(model, options);
    },
  };
});

async function cli(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

describe("self-extend bench --mode", () => {
  it("runs the Self-Extend session in that mode where the backend has it, and lists the others as not available", async () => {
    handedOver.length = 0;
    const { code, stdout, stderr } = await cli(
      "bench",
      "--backend",
      "reference,llama-cpp",
      "--multiples",
      "2",
      "--decode",
      "2",
      "--repeat",
      "1",
      "--mode",
      "fast-prefill",
      "--json",
    );
    expect(code).toBe(0);
    expect(stderr).toMatch(/Self-Extend G = \d+, W = \d+, mode fast-prefill, 2 decoded tokens/);
    const report = JSON.parse(stdout);
    expect(report.mode).toBe("fast-prefill");
    // The reference backend runs exact attention only (its capabilities): nothing was measured there.
    expect(report.results[0]).toEqual({
      backend: "reference",
      notAvailable: 'mode = "fast-prefill" is invalid: the reference backend runs "exact"',
    });
    expect(report.results[1].backend).toBe("llama-cpp");
    expect(report.results[1].rows.map((row: { contextSize: number }) => row.contextSize)).toEqual([512]);
    expect(handedOver).toHaveLength(1);
    expect(handedOver[0].selfExtendSessionOptions).toEqual({ mode: "fast-prefill" });
  });

  it("without --mode, leaves every session to the backend's default", async () => {
    handedOver.length = 0;
    const { code, stdout } = await cli(
      "bench",
      "--backend",
      "reference",
      "--multiples",
      "1",
      "--decode",
      "2",
      "--repeat",
      "1",
      "--json",
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).not.toHaveProperty("mode");
    expect(handedOver).toHaveLength(1);
    expect(handedOver[0].selfExtendSessionOptions).toBeUndefined();
  });

  it("refuses a --mode that is not one of spec v1's, before loading anything", async () => {
    handedOver.length = 0;
    const { code, stderr } = await cli("bench", "--backend", "llama-cpp", "--mode", "fast");
    expect(code).toBe(2);
    expect(stderr.trim()).toBe(
      'self-extend bench: --mode "fast" is not a mode; give one of exact, fast-prefill, llama.cpp-compatible',
    );
    expect(handedOver).toHaveLength(0);
  });
});
