/**
 * The real-shape models' widths against the parameter counts their makers publish (Hugging Face
 * model cards / safetensors metadata): at the real layer counts, each spec's layout must give the
 * published total exactly. A wrong width, head count, feed-forward size, vocabulary, tying or bias
 * changes the count.
 */
import { describe, expect, it } from "vitest";
import { fullDepthRealShapeSpec, realShapeModelSpecs, type TinyModelSpec } from "../src/tiny-model.js";

const published: Record<string, { layers: number; parameters: number }> = {
  "llama-3.2-1b-widths": { layers: 16, parameters: 1_235_814_400 },
  "qwen2.5-0.5b-widths": { layers: 24, parameters: 494_032_768 },
  "gemma-2-2b-widths": { layers: 26, parameters: 2_614_341_888 },
  "phi-mini-4k-widths": { layers: 32, parameters: 3_821_079_552 },
};

/** Parameters of the spec's layout at `layers` layers, counted from the transformer's formula. */
function parameterCount(spec: TinyModelSpec, layers: number): number {
  const width = spec.embeddingSize ?? spec.headCount * spec.headSize;
  const queryWidth = spec.headCount * spec.headSize;
  const keyValueWidth = spec.kvHeadCount * spec.headSize;
  const attention = 2 * width * queryWidth + 2 * width * keyValueWidth;
  const biases = spec.hasQkvBias ? queryWidth + 2 * keyValueWidth : 0;
  const feedForward = 3 * width * spec.feedForwardSize;
  const norms = (spec.architecture === "gemma2" || spec.architecture === "gemma3" ? 4 : 2) * width;
  const layer = attention + biases + feedForward + norms;
  const embeddings = spec.vocabularySize * width * (spec.tiedEmbeddings ? 1 : 2);
  return embeddings + layers * layer + width;
}

describe("real-shape models", () => {
  it("cover Llama 3.2, Qwen2.5, Gemma 2 and Phi-3", () => {
    expect(realShapeModelSpecs.map((spec) => spec.name).sort()).toEqual(Object.keys(published).sort());
  });

  for (const spec of realShapeModelSpecs) {
    it(`${spec.name}: at ${published[spec.name].layers} layers, the published ${published[spec.name].parameters} parameters`, () => {
      expect(parameterCount(spec, published[spec.name].layers)).toBe(published[spec.name].parameters);
    });

    it(`${spec.name} at full depth: the published layer count and parameters, the widths unchanged`, () => {
      const full = fullDepthRealShapeSpec(spec.name, 4096);
      expect(full.layerCount).toBe(published[spec.name].layers);
      expect(parameterCount(full, full.layerCount)).toBe(published[spec.name].parameters);
      expect(full).toEqual({
        ...spec,
        name: `${spec.name}-full-depth-L4096`,
        layerCount: full.layerCount,
        trainedContext: 4096,
      });
    });
  }
});

describe("fullDepthRealShapeSpec", () => {
  it("refuses an unknown name and a trained context below 2, naming the value", () => {
    expect(() => fullDepthRealShapeSpec("llama-9b", 4096)).toThrow(/no real-shape model named "llama-9b"/);
    expect(() => fullDepthRealShapeSpec("llama-3.2-1b-widths", 1)).toThrow(/trained context 1 is invalid/);
  });
});
