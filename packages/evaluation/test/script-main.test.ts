import { afterEach, describe, expect, it, vi } from "vitest";
import { runScriptMain } from "../src/index.js";

describe("runScriptMain (the scripts' entry)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("turns an error into one line naming the script, and exit status 2", async () => {
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => errors.push(line));
    const exits: number[] = [];
    await runScriptMain(
      "gpu-long-greedy",
      async () => {
        throw new RangeError('trained context "4k" is invalid: must be an integer >= 2\n    at somewhere');
      },
      ((code: number) => {
        exits.push(code);
      }) as (code: number) => never,
    );
    expect(errors).toEqual(['gpu-long-greedy: trained context "4k" is invalid: must be an integer >= 2']);
    expect(exits).toEqual([2]);
  });

  it("leaves a successful run alone", async () => {
    const error = vi.spyOn(console, "error");
    let ran = false;
    await runScriptMain("x", async () => {
      ran = true;
    });
    expect(ran).toBe(true);
    expect(error).not.toHaveBeenCalled();
  });
});
