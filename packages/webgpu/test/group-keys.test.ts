/**
 * The two ways a session gets group-level keys (WebGpuModelOptions.groupKeys): rotated back from
 * the cached key at j inside the attention kernel ("derived"), or read from a second copy the RoPE
 * kernel writes beside each key ("cached"). Both against the reference backend on models with
 * partial rotary, whose copy must carry the dimensions RoPE leaves alone; the memory each keeps;
 * the default per adapter; and the refusal of an unknown value.
 */
import { join } from "node:path";
import {
  generateTinyModel,
  loadLlamaWeights,
  type TinyModelSpec,
  tinyModelSpec,
  writeLlamaGguf,
} from "@self-extend/models/node";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { defaultGroupKeySource, type GroupKeySource } from "../src/index.js";
import { compareFileWithReference, webGpuTolerance } from "./against-reference.js";
import { useWebGpuBackend } from "./use-webgpu-backend.js";

const temporaryFolder = useTemporaryFolder("webgpu-group-keys-");
const webGpu = useWebGpuBackend();
const trainedContext = 32;

// The conformance grid's two-layer GQA model, at a shorter trained context (a faster 4 L prompt).
const llama: TinyModelSpec = { ...tinyModelSpec("llama-h16-gqa2"), trainedContext };

/** The model as a GGUF file rotating only the first `rotaryDimension` dimensions of each head. */
function writeModel(spec: TinyModelSpec, rotaryDimension: number): string {
  const weights = generateTinyModel(spec, 5);
  const path = join(temporaryFolder(), `${spec.name}-rotary-${rotaryDimension}.gguf`);
  writeLlamaGguf(path, { ...weights, description: { ...weights.description, rotaryDimension } });
  return path;
}

// 4 L prompt, evaluated in blocks of 24 (not a divisor of it), then greedy tokens one at a time.
const prompt = Array.from({ length: 4 * trainedContext }, (_, index) => (index * 29 + 3) % 128);
const greedyTokens = 12;
const selfExtend = { groupSize: 8, neighborWindow: 8 };

describe("group-level keys derived in the kernel and cached beside each key", () => {
  const settings = (["derived", "cached"] as const).flatMap((groupKeys) =>
    [
      { spec: llama, layout: "interleaved" },
      {
        spec: { ...llama, name: "qwen2-h16-gqa2", architecture: "qwen2", hasQkvBias: true },
        layout: "half-split",
      },
    ].map(({ spec, layout }) => ({
      groupKeys,
      spec: spec as TinyModelSpec,
      label: `${groupKeys}, ${layout}`,
    })),
  );

  it.each(settings)(
    "$label RoPE on 8 of 16 dimensions: 4 L prompt logits and greedy tokens match the reference",
    async ({ groupKeys, spec }) => {
      const path = writeModel(spec, 8);
      expect(loadLlamaWeights(path).description.rotaryDimension).toBe(8);
      const compared = await compareFileWithReference(webGpu.backend, path, {
        modelOptions: { groupKeys },
        selfExtend,
        prompt,
        greedyTokens,
        blockSize: 24,
      });
      expect(compared.groupKeys).toBe(groupKeys);
      const difference = Math.max(compared.prompt, compared.decode);
      console.info(
        `webgpu ${spec.name}, group keys ${groupKeys}: largest log-probability difference ${difference}`,
      );
      expect(difference).toBeLessThanOrEqual(webGpuTolerance());
    },
  );

  it("keeps keys twice with cached group keys and Self-Extend on, once otherwise", async () => {
    const path = writeModel(llama, 16);
    const bytes = async (groupKeys: GroupKeySource, groupSize: number) => {
      const model = await webGpu.backend.loadModel({ path }, { groupKeys });
      const session = await model.createSession({
        selfExtend: { groupSize, neighborWindow: 8 },
        contextSize: 100,
      });
      const cacheBytes = session.cacheBytes;
      await session.dispose();
      await model.dispose();
      return cacheBytes;
    };
    // 2 layers x 100 positions x 2 kv heads x 16 floats x 4 bytes, for keys and for values.
    const oneCopy = 2 * 100 * 2 * 16 * 4;
    expect(await bytes("derived", 4)).toBe(2 * oneCopy);
    expect(await bytes("cached", 4)).toBe(3 * oneCopy);
    expect(await bytes("cached", 1)).toBe(2 * oneCopy);
  });

  it("caches group keys by default on CPU implementations and derives them on GPUs", async () => {
    const context = await webGpu.backend.getContext();
    expect(context.adapterDescription).toMatch(/llvmpipe|lavapipe|swiftshader/i);
    const model = await webGpu.backend.loadModel({ path: writeModel(llama, 16) });
    expect(model.groupKeys).toBe("cached");
    await model.dispose();
    expect(defaultGroupKeySource({ adapterDescription: "NVIDIA H100 80GB HBM3 (Vulkan)" })).toBe("derived");
  });

  it("refuses an unknown value in one line, naming it and the rule", async () => {
    await expect(
      webGpu.backend.loadModel(
        { path: writeModel(llama, 16) },
        { groupKeys: "sometimes" as unknown as GroupKeySource },
      ),
    ).rejects.toThrow(/^groupKeys.*sometimes.*must be "derived" or "cached"$/);
  });
});
