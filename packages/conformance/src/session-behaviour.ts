/**
 * `describeSessionBehaviour`: what every v1 backend must do at its edges, as vitest tests, run by
 * each adapter's own test folder against its backend factory:
 *
 *     describeSessionBehaviour("my-runtime", () => createMyBackend(), { smallBlocks: { blockSize: 4 } });
 *
 * The same input must fail with the same core error class and the same message in every adapter
 * (a token outside the vocabulary, a block longer than the context, bad options, settings the
 * model cannot take), and dispose-while-evaluating and use-after-dispose must end the same way
 * (core's SessionLifecycle). The expected messages are written out here, not produced by core.
 *
 * The model is a tiny generated Llama (L = 64, 64 tokens in the vocabulary): fast on every
 * runtime, and its limits are known numbers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ContextLengthError,
  type EvaluationProgress,
  type SelfExtendBackendV1,
  SelfExtendConfigError,
  type SelfExtendModelV1,
  type SelfExtendSessionV1,
  SessionBusyError,
  SessionDisposedError,
  type SessionOptionsV1,
  TokenOutsideVocabularyError,
} from "@self-extend/core";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

export interface SessionBehaviourOptions {
  /**
   * Session options of the backend that make an evaluation of 16 tokens run in blocks of 4 (the
   * reference's and WebGPU's `blockSize`, ONNX Runtime's `prefillChunkSize`, llama.cpp's
   * `batchSize`), so that a dispose between blocks can be seen to stop the evaluation early.
   */
  readonly smallBlocks: Readonly<Record<string, unknown>>;
  /** Per-test timeout in milliseconds (default 120 000). */
  readonly timeout?: number;
}

const plain = { groupSize: 1, neighborWindow: 1 } as const;
const selfExtend = { groupSize: 4, neighborWindow: 16 } as const;

function counting(length: number): number[] {
  return Array.from({ length }, (_, index) => 1 + (index % 60));
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection, the call succeeded");
}

export function describeSessionBehaviour(
  name: string,
  createBackend: () => SelfExtendBackendV1 | Promise<SelfExtendBackendV1>,
  options: SessionBehaviourOptions,
): void {
  const timeout = options.timeout ?? 120_000;
  let folder: string;
  let modelPath: string;
  let backend: SelfExtendBackendV1;
  let model: SelfExtendModelV1;

  const withSession = async (
    sessionOptions: SessionOptionsV1 & Record<string, unknown>,
    use: (session: SelfExtendSessionV1) => Promise<void>,
  ): Promise<void> => {
    const session = await model.createSession(sessionOptions);
    try {
      await use(session);
    } finally {
      await session.dispose();
    }
  };

  describe(`session behaviour: ${name}`, () => {
    beforeAll(async () => {
      folder = mkdtempSync(join(tmpdir(), "session-behaviour-"));
      modelPath = join(folder, "tiny.gguf");
      writeLlamaGguf(modelPath, generateTinyModel(tinyModelSpec("llama-h8-mha"), 7));
      backend = await createBackend();
      model = await backend.loadModel({ path: modelPath });
      // The limits below are written for this model.
      expect(model.info).toMatchObject({ trainedContext: 64, vocabularySize: 64 });
    }, timeout);

    afterAll(async () => {
      await model?.dispose();
      if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
    });

    it(
      "refuses a token outside the vocabulary with TokenOutsideVocabularyError, before any work",
      async () => {
        await withSession({ selfExtend: plain, contextSize: 16 }, async (session) => {
          const tooLarge = await rejectionOf(session.evaluate([1, 2, 64]));
          expect(tooLarge).toBeInstanceOf(TokenOutsideVocabularyError);
          expect(tooLarge.message).toBe("token id 64 at index 2 is outside the vocabulary (ids 0 .. 63)");
          const negative = await rejectionOf(session.decode(-1));
          expect(negative).toBeInstanceOf(TokenOutsideVocabularyError);
          expect(negative.message).toBe("token id -1 at index 0 is outside the vocabulary (ids 0 .. 63)");
          expect(session.tokenCount).toBe(0);
          const evaluation = await session.evaluate([1, 2, 3]);
          expect(evaluation.logits).toHaveLength(64);
        });
      },
      timeout,
    );

    it(
      "refuses a block longer than the context with ContextLengthError, and stays usable",
      async () => {
        await withSession({ selfExtend: selfExtend, contextSize: 16 }, async (session) => {
          const error = await rejectionOf(session.evaluate(counting(17)));
          expect(error).toBeInstanceOf(ContextLengthError);
          expect(error.message).toBe(
            "a sequence of 17 tokens is too long: the session was created with contextSize = 16 and holds 0 tokens",
          );
          await session.evaluate(counting(10), { logits: "none" });
          const later = await rejectionOf(session.evaluate(counting(7)));
          expect(later).toBeInstanceOf(ContextLengthError);
          expect(later.message).toBe(
            "a sequence of 17 tokens is too long: the session was created with contextSize = 16 and holds 10 tokens",
          );
          expect(session.tokenCount).toBe(10);
          await session.evaluate(counting(6), { logits: "none" });
          expect(session.tokenCount).toBe(16);
        });
      },
      timeout,
    );

    it(
      "refuses bad options at createSession with SelfExtendConfigError naming the value and the rule",
      async () => {
        const cases: [Record<string, unknown>, string][] = [
          [{ selfExtend: plain, contextSize: 0 }, "contextSize = 0 is invalid: must be an integer >= 1"],
          [{ selfExtend: plain, contextSize: 2.5 }, "contextSize = 2.5 is invalid: must be an integer >= 1"],
          [
            { selfExtend: { groupSize: 4, neighborWindow: 10 }, contextSize: 32 },
            "neighborWindow = 10 is invalid: must be a multiple of groupSize (4); 10 % 4 = 2",
          ],
          [
            { selfExtend: { groupSize: 0, neighborWindow: 4 }, contextSize: 32 },
            "groupSize = 0 is invalid: must be at least 1",
          ],
          [{ selfExtend: plain, contextSize: 32, mode: "fastest" }, 'mode = "fastest" is invalid: the '],
          [
            { selfExtend: plain, contextSize: 32, cachePrecision: "float8" },
            'cachePrecision = "float8" is invalid: the ',
          ],
        ];
        for (const [sessionOptions, message] of cases) {
          const error = await rejectionOf(model.createSession(sessionOptions as unknown as SessionOptionsV1));
          expect(error).toBeInstanceOf(SelfExtendConfigError);
          expect(error.message.startsWith(message), `${error.message} starts with ${message}`).toBe(true);
        }
      },
      timeout,
    );

    it(
      "refuses W >= L with Self-Extend at createSession; plain attention (G = 1) takes any W",
      async () => {
        for (const neighborWindow of [64, 128]) {
          const error = await rejectionOf(
            model.createSession({ selfExtend: { groupSize: 2, neighborWindow }, contextSize: 32 }),
          );
          expect(error).toBeInstanceOf(SelfExtendConfigError);
          expect(error.message).toBe(
            `neighborWindow = ${neighborWindow} is invalid: must be smaller than the trained context L = 64 when groupSize > 1 (G = 2)`,
          );
        }
        // The planner describes plain attention as G = 1, W = L.
        await withSession(
          { selfExtend: { groupSize: 1, neighborWindow: 64 }, contextSize: 32 },
          async (session) => {
            expect((await session.evaluate(counting(3))).logits).toHaveLength(64);
          },
        );
      },
      timeout,
    );

    it(
      "refuses a contextSize past (L - W) * G + W at createSession; plain attention may pass L",
      async () => {
        // L = 64, G = 4, W = 16: (64 - 16) * 4 + 16 = 208.
        const error = await rejectionOf(model.createSession({ selfExtend: selfExtend, contextSize: 209 }));
        expect(error).toBeInstanceOf(SelfExtendConfigError);
        expect(error.message).toBe(
          "contextSize = 209 is invalid: with trained context L = 64, G = 4, W = 16 the largest usable context is (L - W) * G + W = 208; use a larger groupSize, a smaller neighborWindow or a smaller contextSize",
        );
        await withSession({ selfExtend: selfExtend, contextSize: 208 }, async (session) => {
          expect(session.options.contextSize).toBe(208);
        });
        // Baselines compare plain attention past L with Self-Extend there.
        await withSession({ selfExtend: plain, contextSize: 80 }, async (session) => {
          await session.evaluate(counting(70), { logits: "none" });
          expect(session.tokenCount).toBe(70);
        });
      },
      timeout,
    );

    it(
      "refuses a second evaluation or a reset while one runs with SessionBusyError",
      async () => {
        await withSession({ selfExtend: plain, contextSize: 32, ...options.smallBlocks }, async (session) => {
          const first = session.evaluate(counting(16), { logits: "all" });
          const second = await rejectionOf(session.evaluate([1]));
          expect(second).toBeInstanceOf(SessionBusyError);
          expect(second.message).toBe("the session is busy: await the previous evaluate or decode first");
          await expect(session.reset()).rejects.toBeInstanceOf(SessionBusyError);
          expect((await first).logits).toHaveLength(16 * 64);
          expect(session.tokenCount).toBe(16);
        });
      },
      timeout,
    );

    it(
      "dispose during an evaluation stops it at the next block, rejects it with SessionDisposedError, then frees",
      async () => {
        const session = await model.createSession({
          selfExtend: plain,
          contextSize: 32,
          ...options.smallBlocks,
        });
        const progress: EvaluationProgress[] = [];
        let disposal: Promise<void> | undefined;
        const evaluation = session.evaluate(counting(16), {
          logits: "all",
          onProgress: (step) => {
            progress.push(step);
            disposal ??= session.dispose();
          },
        });
        const error = await rejectionOf(evaluation);
        expect(error).toBeInstanceOf(SessionDisposedError);
        expect(error.message).toBe("the session was disposed: create a new one");
        await disposal;
        // Blocks of 4: the first block reports progress and asks for the dispose; none runs after it.
        expect(progress).toEqual([{ evaluated: 4, total: 16 }]);
      },
      timeout,
    );

    it(
      "dispose right after an evaluation starts gives the same outcome, whatever the block size",
      async () => {
        const session = await model.createSession({ selfExtend: plain, contextSize: 32 });
        const evaluation = session.evaluate(counting(16), { logits: "all" });
        const disposal = session.dispose();
        await expect(evaluation).rejects.toBeInstanceOf(SessionDisposedError);
        await expect(disposal).resolves.toBeUndefined();
      },
      timeout,
    );

    it(
      "every call after dispose rejects with SessionDisposedError; a second dispose is a no-op",
      async () => {
        const session = await model.createSession({ selfExtend: plain, contextSize: 32 });
        await session.evaluate(counting(4));
        await session.dispose();
        for (const call of [() => session.evaluate([1]), () => session.decode(1), () => session.reset()]) {
          const error = await rejectionOf(call());
          expect(error).toBeInstanceOf(SessionDisposedError);
          expect(error.message).toBe("the session was disposed: create a new one");
        }
        await expect(session.dispose()).resolves.toBeUndefined();
      },
      timeout,
    );

    it(
      "a disposed model refuses new sessions with SessionDisposedError",
      async () => {
        const other = await backend.loadModel({ path: modelPath });
        await other.dispose();
        const error = await rejectionOf(other.createSession({ selfExtend: plain, contextSize: 8 }));
        expect(error).toBeInstanceOf(SessionDisposedError);
        expect(error.message).toBe("the model was disposed: load a new one");
      },
      timeout,
    );
  });
}
