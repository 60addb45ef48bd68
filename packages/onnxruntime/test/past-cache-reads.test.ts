/**
 * The past caches are read in place: after ONNX Runtime's own optimisations (the graph it runs, saved
 * through `optimizedModelFilePath`), every layer's past level reads `past_key.N` (plain) or
 * `past_key_group.N` (Self-Extend) and `past_value.N` straight into a FusedMatMul with transBatchB,
 * the fusion of our Transpose into the product, and no Concat or Transpose of a whole past cache is
 * left. On a 32k-token cache those copies had cost more than the attention itself; if an ONNX
 * Runtime update stops fusing, this fails instead of decoding quietly getting slower.
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

  it.each([
    ["plain", { kind: "plain" } as const, graphNames.pastKey],
    [
      "self-extend",
      { kind: "self-extend", selfExtend: { groupSize: 4, neighborWindow: 16 } } as const,
      graphNames.pastKeyGroup,
    ],
  ])(
    "%s: the past level's keys and values go into FusedMatMul uncopied",
    async (_name, attention, pastKeys) => {
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
        for (const [cache, transposedKeys] of [
          [pastKeys(layer), 1],
          [graphNames.pastValue(layer), 0],
        ] as const) {
          const readers = nodes.filter((node) => node.input.includes(cache));
          const fused = readers.filter(
            (node) =>
              node.opType === "FusedMatMul" &&
              node.input[1] === cache &&
              integerAttribute(node, "transBatchB") === 1 &&
              integerAttribute(node, "transB") === transposedKeys,
          );
          expect(fused, `${cache}: ${readers.map((node) => node.opType).join(", ")}`).toHaveLength(1);
          // The only other readers copy a part of it (Gather: the recent level's last W rows, a prompt's far keys).
          expect(readers.filter((node) => node !== fused[0]).map((node) => node.opType)).toEqual(
            expect.not.arrayContaining(["Concat", "Transpose", "MatMul"]),
          );
        }
      }
    },
  );
});
