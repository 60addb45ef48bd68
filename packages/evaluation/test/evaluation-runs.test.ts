import { describe, expect, it } from "vitest";
import { planEvaluationRuns, runLabel } from "../src/index.js";

describe("evaluation runs", () => {
  it("uses the planner per length (plain within L) and adds plain runs on request", () => {
    const runs = planEvaluationRuns({ lengths: [512, 2048], trainedContext: 512, comparePlain: true });
    expect(runs.map((run) => [run.length, run.method, run.planned])).toEqual([
      [512, "plain", true],
      [2048, "self-extend", true],
      [2048, "plain", false],
    ]);
    expect(runs[1].selfExtend).toEqual({ groupSize: 8, neighborWindow: 96 });
    expect(runs[1].beyondTrainedContext).toBe(false);
    expect(runs[2].largestRelativePosition).toBe(2047);
    expect(runs[2].beyondTrainedContext).toBe(true);
    expect(runs.map(runLabel)).toEqual(["plain", "Self-Extend G=8 W=96", "plain"]);
  });

  it("uses an explicit (G, W) at every length and flags positions past L - 1", () => {
    const runs = planEvaluationRuns({
      lengths: [1024, 2048],
      trainedContext: 512,
      selfExtend: { groupSize: 4, neighborWindow: 256 },
    });
    expect(
      runs.map((run) => [run.length, run.largestRelativePosition, run.beyondTrainedContext, run.planned]),
    ).toEqual([
      [1024, 447, false, false],
      [2048, 703, true, false],
    ]);
  });

  it("plans for the answer tokens too", () => {
    const [run] = planEvaluationRuns({ lengths: [512], trainedContext: 512, extraTokens: 8 });
    expect(run.method).toBe("self-extend");
  });
});
