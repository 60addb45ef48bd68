/**
 * The past caches are read in place: after ONNX Runtime's own optimisations (the graph it runs, saved
 * through `optimizedModelFilePath`), every layer's past level reads its rows, `past_key.N` and
 * `past_value.N` (plain) or `far_key_group.N` and `far_value.N` (Self-Extend's far rows [0, S)), with
 * one FusedMatMul each (transBatchB: the fusion of our Transpose into the product) and nothing else:
 * no Concat, Gather, Slice or Transpose copies them, and no mask is added to their scores. Self-Extend's
 * recent rows [S, p) (at most W - 1 of them) are copied once, by the Concat that appends the run's
 * new rows. On a 32k-token cache whole-cache copies had cost more than the attention itself; if an
 * ONNX Runtime update stops fusing, this fails instead of decoding quietly getting slower.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { generateTinyModel, tinyModelSpec } from "@self-extend/models";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { ensureDecoderExport, graphNames } from "../src/export.js";
import { type GraphProto, ModelProtoSchema, type NodeProto } from "../src/generated/onnx/onnx_pb.js";

/** Every node of the graph and of its control-flow branches. */
function allNodes(graph: GraphProto): NodeProto[] {
  return graph.node.flatMap((node) => [
    node,
    ...node.attribute.flatMap((attribute) =>
      (attribute.g === undefined ? attribute.graphs : [attribute.g]).flatMap(allNodes),
    ),
  ]);
}

const integerAttribute = (node: NodeProto, name: string) =>
  Number(node.attribute.find((attribute) => attribute.name === name)?.i ?? 0);

describe("past caches read in place by ONNX Runtime", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-past-reads-");
  // GQA (4 query heads over 2 key/value heads), so the products batch over key heads.
  const weights = generateTinyModel(tinyModelSpec("llama-h16-gqa2"), 1);

  const selfExtend = { kind: "self-extend", selfExtend: { groupSize: 4, neighborWindow: 16 } } as const;
  /** For one layer: each cache input and the op types of every node that reads it. */
  type Readers = (layer: number) => [input: string, opTypes: string[]][];
  it.each<[string, typeof selfExtend | { readonly kind: "plain" }, Readers]>([
    [
      "plain",
      { kind: "plain" },
      (layer) => [
        [graphNames.pastKey(layer), ["FusedMatMul"]],
        [graphNames.pastValue(layer), ["FusedMatMul"]],
      ],
    ],
    [
      "self-extend",
      selfExtend,
      (layer) => [
        [graphNames.farKeyGroup(layer), ["FusedMatMul"]],
        [graphNames.farValue(layer), ["FusedMatMul"]],
        [graphNames.recentKey(layer), ["Concat"]],
        // Only prompts with group keys among the recent ones read it, in the If's branch.
        [graphNames.recentKeyGroup(layer), ["Slice"]],
        [graphNames.recentValue(layer), ["Concat"]],
      ],
    ],
  ])(
    "%s: the past level's keys and values go into FusedMatMul uncopied",
    async (_name, attention, readersOf) => {
      const folder = temporaryFolder();
      const location = ensureDecoderExport({
        cacheFolder: folder,
        modelHash: "test",
        attention,
        weights: () => weights,
      });
      const optimizedPath = join(folder, "optimized.onnx");
      const session = await ort.InferenceSession.create(location.modelPath, {
        graphOptimizationLevel: "all",
        optimizedModelFilePath: optimizedPath,
        logSeverityLevel: 3,
      });
      await session.release();
      const nodes = allNodes(fromBinary(ModelProtoSchema, readFileSync(optimizedPath)).graph!);
      const { layerCount } = weights.description;
      for (let layer = 0; layer < layerCount; layer++) {
        for (const [cache, opTypes] of readersOf(layer)) {
          const readers = nodes.filter((node) => node.input.includes(cache));
          expect(
            readers.map((node) => node.opType),
            cache,
          ).toEqual(opTypes);
          for (const node of readers.filter((reader) => reader.opType === "FusedMatMul")) {
            // Keys enter transposed ([kvHeads, headSize, keys]), values head-major: both by strides.
            const isKeys = cache.includes("key");
            expect(node.input[1], cache).toBe(cache);
            expect(integerAttribute(node, "transBatchB"), cache).toBe(1);
            expect(integerAttribute(node, "transB"), cache).toBe(isKeys ? 1 : 0);
          }
        }
      }
    },
  );
});
