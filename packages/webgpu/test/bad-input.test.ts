/** Bad input gives clear errors naming what is missing, never a hang or a silent wrong answer. */
import { ContextLengthError, SelfExtendConfigError } from "@self-extend/core";
import { generateTinyModel, tinyModelGrid } from "@self-extend/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createWebGpuBackend,
  requestWebGpuDevice,
  type WebGpuBackend,
  type WebGpuContext,
  WebGpuDeviceError,
  WebGpuUnavailableError,
} from "../src/index.js";
import { SelfExtendAttentionKernel, uploadLlamaWeights } from "../src/kernels.js";

const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
let backend: WebGpuBackend;
let context: WebGpuContext;

beforeAll(async () => {
  backend = createWebGpuBackend();
  context = await backend.getContext();
});
afterAll(() => context?.destroy());

describe("bad input", () => {
  it("no adapter: requestWebGpuDevice throws WebGpuUnavailableError; checkAvailability says why", async () => {
    await expect(requestWebGpuDevice({ gpu: noAdapter })).rejects.toThrow(WebGpuUnavailableError);
    const availability = await createWebGpuBackend({ device: { gpu: noAdapter } }).checkAvailability();
    expect(availability.available).toBe(false);
    expect(availability.reason).toMatch(/no adapter/);
  });

  it("an unknown backend name in SELF_EXTEND_WEBGPU_BACKEND is refused by name", async () => {
    const previous = process.env.SELF_EXTEND_WEBGPU_BACKEND;
    process.env.SELF_EXTEND_WEBGPU_BACKEND = "metal";
    try {
      await expect(requestWebGpuDevice()).rejects.toThrow(/unknown backend "metal"/);
    } finally {
      if (previous === undefined) delete process.env.SELF_EXTEND_WEBGPU_BACKEND;
      else process.env.SELF_EXTEND_WEBGPU_BACKEND = previous;
    }
  });

  it("a model larger than the device's storage binding limit is refused before upload", async () => {
    const weights = generateTinyModel(tinyModelGrid[0], 1);
    const small = { ...context, limits: { ...context.limits, maxStorageBufferBindingSize: 1024 } };
    await expect(uploadLlamaWeights(small, weights)).rejects.toThrow(/maxStorageBufferBindingSize/);
  });

  it("a contextSize past (L - W) * G + W is refused at creation; a longer prompt throws ContextLengthError and leaves the session usable", async () => {
    const spec = tinyModelGrid[0];
    const model = await backend.createModel(generateTinyModel(spec, 2));
    const config = { groupSize: 2, neighborWindow: 16 };
    const limit = (spec.trainedContext - 16) * 2 + 16;
    await expect(model.createSession({ selfExtend: config, contextSize: 1024 })).rejects.toThrow(
      SelfExtendConfigError,
    );
    const session = await model.createSession({ selfExtend: config, contextSize: limit });
    await expect(session.evaluate(new Array(limit + 1).fill(1))).rejects.toThrow(ContextLengthError);
    expect(session.tokenCount).toBe(0);
    const evaluation = await session.evaluate([1, 2, 3]);
    expect(evaluation.logits).toHaveLength(spec.vocabularySize);
    await session.dispose();
    await model.dispose();
  });

  it("an aborted signal stops a long prefill between blocks and rolls the session back", async () => {
    const spec = tinyModelGrid[0];
    const model = await backend.createModel(generateTinyModel(spec, 3));
    const session = await model.createSession({
      selfExtend: { groupSize: 1, neighborWindow: 1 },
      contextSize: 64,
      blockSize: 8,
    });
    const controller = new AbortController();
    const seen: number[] = [];
    await expect(
      session.evaluate(new Array(40).fill(2), {
        signal: controller.signal,
        onProgress: ({ evaluated }) => {
          seen.push(evaluated);
          if (evaluated >= 16) controller.abort();
        },
      }),
    ).rejects.toThrow(/abort/i);
    expect(seen).toEqual([8, 16]);
    expect(session.tokenCount).toBe(0);
    await session.dispose();
    await model.dispose();
  });

  it("a call past the driver's loop-iteration limit is refused instead of returning truncated results", async () => {
    const limited = { ...context, loopIterationLimit: 1000 };
    const kernel = await SelfExtendAttentionKernel.create(limited, {
      shape: { headCount: 1, kvHeadCount: 1, headSize: 8 },
      config: { groupSize: 2, neighborWindow: 4 },
      rope: { layout: "interleaved" },
      contextSize: 4096,
    });
    expect(() => kernel.createCallParameters({ queryStart: 4095, queryCount: 1, keyCount: 4096 })).toThrow(
      WebGpuDeviceError,
    );
    expect(() => kernel.createCallParameters({ queryStart: 99, queryCount: 1, keyCount: 100 })).not.toThrow();
    kernel.destroy();
  });
});
