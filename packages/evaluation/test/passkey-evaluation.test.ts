import { describe, expect, it } from "vitest";
import { evaluatePasskey, type PasskeyCell, passkeyKeys, planEvaluationRuns } from "../src/index.js";
import { stories260KModel, stories260KTokenizer } from "./stories260k.js";

describe("passkey evaluation", () => {
  it("reads every length x depth with the seeded keys and scores the greedy answers", async () => {
    const model = await stories260KModel();
    const progress: number[] = [];
    const cells = await evaluatePasskey(model, stories260KTokenizer(), {
      runs: planEvaluationRuns({ lengths: [160], trainedContext: 512, extraTokens: 6 }),
      depths: [0, 1],
      trials: 2,
      seed: 3,
      answerTokens: 6,
      introduction: "",
      onProgress: ({ promptsDone }) => progress.push(promptsDone),
    });
    expect(progress).toEqual([1, 2, 3, 4]);
    expect(cells.map((cell) => [cell.length, cell.method, cell.depth])).toEqual([
      [160, "plain", 0],
      [160, "plain", 1],
    ]);
    for (const cell of cells) {
      expect(cell.trials.map((trial) => trial.key)).toEqual(passkeyKeys(2, 3));
      for (const trial of cell.trials) {
        expect(typeof trial.answer).toBe("string");
        expect(trial.found).toBe(trial.answer.includes(trial.key));
      }
      expect(cell.accuracy).toBe(cell.successes / 2);
    }
    expect(cells[0].trials[0].keyStart).toBe(1);
  });

  it("stops at an abort and has handed out the cells finished before it", async () => {
    const model = await stories260KModel();
    const controller = new AbortController();
    const handed: PasskeyCell[] = [];
    const run = evaluatePasskey(model, stories260KTokenizer(), {
      runs: planEvaluationRuns({ lengths: [160], trainedContext: 512 }),
      depths: [0, 0.5, 1],
      trials: 1,
      introduction: "",
      answerTokens: 2,
      signal: controller.signal,
      onCell: (cell) => {
        handed.push(cell);
        controller.abort(Object.assign(new Error("interrupted"), { name: "AbortError" }));
      },
    });
    await expect(run).rejects.toMatchObject({ name: "AbortError" });
    expect(handed.map((cell) => cell.depth)).toEqual([0]);
  });
});
