import { describe, expect, it } from "vitest";
import { createSelfExtendConfig, SelfExtendConfigError, validateSelfExtendConfig } from "../src/index.js";

function errorOf(action: () => unknown): SelfExtendConfigError {
  try {
    action();
  } catch (error) {
    if (error instanceof SelfExtendConfigError) return error;
    throw error;
  }
  throw new Error("expected a SelfExtendConfigError");
}

describe("SelfExtendConfig validation", () => {
  it("accepts W a multiple of G and freezes the result", () => {
    const config = createSelfExtendConfig(4, 256);
    expect(config).toEqual({ groupSize: 4, neighborWindow: 256 });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{ groupSize: 3, neighborWindow: 8 }, "neighborWindow", 8, "multiple of groupSize (3)"],
    [{ groupSize: 0, neighborWindow: 8 }, "groupSize", 0, "at least 1"],
    [{ groupSize: 2, neighborWindow: -4 }, "neighborWindow", -4, "at least 1"],
    [{ groupSize: 2.5, neighborWindow: 5 }, "groupSize", 2.5, "integer"],
    [{ groupSize: 2, neighborWindow: Number.NaN }, "neighborWindow", Number.NaN, "integer"],
    [{ groupSize: "2", neighborWindow: 4 }, "groupSize", "2", "integer"],
  ])("rejects %j naming the field, the value and the rule", (input, field, value, rule) => {
    const error = errorOf(() => validateSelfExtendConfig(input as never));
    expect(error.field).toBe(field);
    expect(error.value).toEqual(value);
    expect(error.rule).toContain(rule);
    expect(error.message).toContain(field);
    expect(error.message).toContain(rule);
  });

  it("names W % G in the message", () => {
    expect(() => createSelfExtendConfig(3, 8)).toThrow("8 % 3 = 2");
  });
});
