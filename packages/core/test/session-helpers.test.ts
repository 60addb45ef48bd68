import { describe, expect, it } from "vitest";
import {
  evaluateInBlocks,
  LogitCollector,
  SelfExtendConfigError,
  SessionBusyError,
  SessionDisposedError,
  SessionLifecycle,
  validateSessionForModel,
} from "../src/index.js";

/** A fake block runner: row r of a block holds the value of its absolute index, vocabulary of 2. */
function rowsOf(blockStart: number, rows: readonly number[]): Float32Array {
  return Float32Array.from(rows.flatMap((row) => [blockStart + row, -(blockStart + row)]));
}

describe("evaluateInBlocks", () => {
  it("runs blocks in order, stores the wanted rows and reports progress", async () => {
    const tokenCounts: number[] = [];
    const progress: number[] = [];
    const evaluation = await evaluateInBlocks({
      count: 7,
      blockSize: 3,
      firstPosition: 10,
      collector: new LogitCollector([6, 0, 6], 7, 10, 2),
      onProgress: ({ evaluated }) => progress.push(evaluated),
      runBlock: (blockStart, _count, rows) => rowsOf(blockStart, rows),
      setTokenCount: (tokens) => tokenCounts.push(tokens),
    });
    expect(Array.from(evaluation.positions)).toEqual([16, 10, 16]);
    expect(Array.from(evaluation.logits)).toEqual([6, -6, 0, -0, 6, -6]);
    expect(tokenCounts).toEqual([13, 16, 17]);
    expect(progress).toEqual([3, 6, 7]);
  });

  it("puts the token count back and rethrows on an abort between blocks", async () => {
    const controller = new AbortController();
    const tokenCounts: number[] = [];
    const attempt = evaluateInBlocks({
      count: 7,
      blockSize: 3,
      firstPosition: 10,
      collector: new LogitCollector("last", 7, 10, 2),
      signal: controller.signal,
      runBlock: (blockStart, _count, rows) => {
        controller.abort();
        return rowsOf(blockStart, rows);
      },
      setTokenCount: (tokens) => tokenCounts.push(tokens),
    });
    await expect(attempt).rejects.toThrow(/abort/i);
    expect(tokenCounts).toEqual([13, 10]);
  });
});

describe("validateSessionForModel", () => {
  const model = { trainedContext: 64 };

  it("lets plain attention (G = 1) take any W and a context past L", () => {
    expect(() =>
      validateSessionForModel({ selfExtend: { groupSize: 1, neighborWindow: 64 }, contextSize: 500 }, model),
    ).not.toThrow();
    expect(() =>
      validateSessionForModel({ selfExtend: { groupSize: 1, neighborWindow: 1 }, contextSize: 65 }, model),
    ).not.toThrow();
  });

  it("refuses W >= L with G > 1, naming W and L", () => {
    expect(() =>
      validateSessionForModel({ selfExtend: { groupSize: 2, neighborWindow: 64 }, contextSize: 8 }, model),
    ).toThrow(
      "neighborWindow = 64 is invalid: must be smaller than the trained context L = 64 when groupSize > 1 (G = 2)",
    );
  });

  it("takes contextSize up to (L - W) * G + W and refuses one more", () => {
    const selfExtend = { groupSize: 4, neighborWindow: 16 };
    // (64 - 16) * 4 + 16 = 208
    expect(() => validateSessionForModel({ selfExtend, contextSize: 208 }, model)).not.toThrow();
    expect(() => validateSessionForModel({ selfExtend, contextSize: 209 }, model)).toThrow(
      SelfExtendConfigError,
    );
    expect(() => validateSessionForModel({ selfExtend, contextSize: 209 }, model)).toThrow(
      /^contextSize = 209 is invalid: .*\(L - W\) \* G \+ W = 208;/,
    );
    expect(() =>
      validateSessionForModel({ selfExtend, contextSize: 209, allowBeyondUsableContext: true }, model),
    ).not.toThrow();
  });
});

describe("SessionLifecycle", () => {
  /** A piece of work that finishes when told to, and reports the signal it was given. */
  function controllable() {
    let finish = (): void => undefined;
    const seen: AbortSignal[] = [];
    const work = (signal: AbortSignal) => {
      seen.push(signal);
      return new Promise<string>((resolve) => {
        finish = () => resolve("done");
      });
    };
    return { work, finish: () => finish(), seen };
  }

  it("runs one evaluation at a time; reset and a second run are SessionBusyError meanwhile", async () => {
    const lifecycle = new SessionLifecycle();
    const first = controllable();
    const running = lifecycle.run(undefined, first.work);
    await expect(lifecycle.run(undefined, async () => "second")).rejects.toBeInstanceOf(SessionBusyError);
    expect(() => lifecycle.assertIdle()).toThrow(SessionBusyError);
    first.finish();
    await expect(running).resolves.toBe("done");
    await expect(lifecycle.run(undefined, async () => "next")).resolves.toBe("next");
  });

  it("passes the caller's abort reason through", async () => {
    const lifecycle = new SessionLifecycle();
    const controller = new AbortController();
    const running = lifecycle.run(controller.signal, async (signal) => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      signal.throwIfAborted();
      return "not aborted";
    });
    controller.abort(new Error("stop"));
    await expect(running).rejects.toThrow("stop");
  });

  it("dispose aborts the evaluation in flight, waits for it, frees once, and refuses every later call", async () => {
    const lifecycle = new SessionLifecycle();
    const first = controllable();
    const running = lifecycle.run(undefined, first.work);
    const events: string[] = [];
    const disposal = lifecycle.dispose(() => {
      events.push("freed");
    });
    expect(first.seen[0].aborted).toBe(true);
    expect(first.seen[0].reason).toBeInstanceOf(SessionDisposedError);
    await Promise.resolve();
    expect(events).toEqual([]);
    // The work ignores the signal and succeeds: the caller still gets SessionDisposedError.
    first.finish();
    await expect(running).rejects.toBeInstanceOf(SessionDisposedError);
    await disposal;
    expect(events).toEqual(["freed"]);
    await lifecycle.dispose(() => {
      events.push("freed again");
    });
    expect(events).toEqual(["freed"]);
    await expect(lifecycle.run(undefined, async () => "late")).rejects.toThrow(
      "the session was disposed: create a new one",
    );
    expect(() => lifecycle.assertIdle()).toThrow(SessionDisposedError);
  });
});
