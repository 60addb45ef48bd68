import { describe, expect, it } from "vitest";
import { takeScaleSessionOptions } from "../scripts/gpu-backend.js";

describe("the GPU scale benchmark's own flags", () => {
  it("takes --mode and --prefill-chunk-size out, wherever they stand, and leaves the rest in order", () => {
    expect(takeScaleSessionOptions(["/tmp/m", "4096", "1,4,8", "--decode", "16"])).toEqual({
      rest: ["/tmp/m", "4096", "1,4,8", "--decode", "16"],
      sessionOptions: {},
    });
    expect(
      takeScaleSessionOptions([
        "--mode",
        "fast-prefill",
        "/tmp/m",
        "4096",
        "--prefill-chunk-size",
        "142",
        "out.json",
      ]),
    ).toEqual({
      rest: ["/tmp/m", "4096", "out.json"],
      sessionOptions: { mode: "fast-prefill", prefillChunkSize: 142 },
    });
    expect(takeScaleSessionOptions(["/tmp/m", "--mode", "llama.cpp-compatible"]).sessionOptions).toEqual({
      mode: "llama.cpp-compatible",
    });
  });

  it("refuses a mode this adapter lacks, a chunk size that is not a positive integer, and a chunk size without fast-prefill, in one line", () => {
    expect(() => takeScaleSessionOptions(["/tmp/m", "--mode", "fast"])).toThrow(
      '--mode "fast" is invalid: must be one of exact, fast-prefill, llama.cpp-compatible',
    );
    expect(() => takeScaleSessionOptions(["/tmp/m", "--mode"])).toThrow('--mode "" is invalid');
    expect(() =>
      takeScaleSessionOptions(["/tmp/m", "--mode", "fast-prefill", "--prefill-chunk-size", "0"]),
    ).toThrow('--prefill-chunk-size "0" is invalid: must be an integer >= 1');
    expect(() => takeScaleSessionOptions(["/tmp/m", "--prefill-chunk-size", "64"])).toThrow(
      "--prefill-chunk-size 64 is invalid without --mode fast-prefill: only fast-prefill chunks the prompt",
    );
  });
});
