/**
 * The export itself: decodes back with our generated protobuf code, loads in onnxruntime, handles
 * partial rotary, and the export cache reuses sound exports and rebuilds stale or damaged ones.
 */
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { generateTinyModel, type LlamaWeights, tinyModelSpec } from "@self-extend/models";
import { createReferenceModel } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { writeAllAt } from "../src/decoder-export.js";
import {
  checkExportFolder,
  ensureDecoderExport,
  externalDataFileName,
  manifestFileName,
  modelFileName,
} from "../src/export.js";
import { ModelProtoSchema, TensorProto_DataLocation } from "../src/generated/onnx/onnx_pb.js";
import { createOnnxRuntimeModel } from "../src/index.js";
import { compareLogits, tolerance } from "./tolerances.js";

const selfExtend = { groupSize: 4, neighborWindow: 16 };
const attention = { kind: "self-extend", selfExtend } as const;

describe("decoder export", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-export-");

  it("decodes back with the generated protobuf code and loads in onnxruntime", async () => {
    const weights = generateTinyModel(tinyModelSpec("qwen2-h16-mha-bias"), 1);
    const location = ensureDecoderExport({
      cacheFolder: temporaryFolder(),
      modelHash: "test",
      attention,
      weights: () => weights,
    });
    const model = fromBinary(ModelProtoSchema, readFileSync(location.modelPath));
    expect(Number(model.irVersion)).toBeLessThanOrEqual(13);
    expect(model.opsetImport.map((entry) => [entry.domain, Number(entry.version)])).toEqual([["", 23]]);
    const graph = model.graph!;
    expect(graph.input.map((input) => input.name).slice(0, 5)).toEqual([
      "input_ids",
      "positions",
      "logit_indices",
      "rope_cos",
      "rope_sin",
    ]);
    expect(graph.output.map((output) => output.name)).toContain("present_key_group.1");
    // Every weight lives in the data file; only small constants stay inline.
    const external = graph.initializer.filter(
      (tensor) => tensor.dataLocation === TensorProto_DataLocation.EXTERNAL,
    );
    expect(external.map((tensor) => tensor.name)).toContain("token_embedding");
    // Tied embeddings are stored once.
    expect(external.map((tensor) => tensor.name)).not.toContain("classifier.weight");
    const dataSize = readFileSync(join(location.folder, externalDataFileName)).byteLength;
    for (const tensor of external) {
      const entries = Object.fromEntries(tensor.externalData.map((entry) => [entry.key, entry.value]));
      expect(entries.location).toBe(externalDataFileName);
      expect(Number(entries.offset) + Number(entries.length)).toBeLessThanOrEqual(dataSize);
    }
    const session = await ort.InferenceSession.create(location.modelPath);
    expect(session.inputNames).toContain("far_key_group.0");
    expect(session.outputNames).toContain("logits");
    await session.release();
  });

  it("runs partial rotary and linear RoPE scaling like the reference", async () => {
    const base = generateTinyModel(tinyModelSpec("qwen2-h32-gqa4-nobias-base1e6"), 5);
    for (const change of [{ rotaryDimension: 16 }, { rotaryDimension: 8, ropeLinearScalingFactor: 2 }]) {
      const weights: LlamaWeights = { ...base, description: { ...base.description, ...change } };
      const config = { groupSize: 4, neighborWindow: 32 };
      const contextSize = 600;
      const prompt = Array.from(
        { length: contextSize },
        (_, index) => (index * 11 + 5) % weights.description.vocabularySize,
      );
      const expected = await (
        await createReferenceModel(weights).createSession({ selfExtend: config, contextSize })
      ).evaluate(prompt, { logits: "all" });
      const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
      const actual = await (await model.createSession({ selfExtend: config, contextSize })).evaluate(prompt, {
        logits: "all",
      });
      const result = compareLogits(actual.logits, expected.logits, tolerance());
      expect(
        result.worstExcess,
        `${JSON.stringify(change)}: ${result.largestDifference}`,
      ).toBeLessThanOrEqual(0);
      await model.dispose();
    }
  });
});

describe("export cache", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-cache-");
  const weights = generateTinyModel(tinyModelSpec("llama-h8-mha"), 2);

  it("reuses a sound export and keys on the settings", () => {
    const cacheFolder = temporaryFolder();
    let exports = 0;
    const options = {
      cacheFolder,
      modelHash: "m1",
      attention,
      weights: () => {
        exports++;
        return weights;
      },
    };
    const first = ensureDecoderExport(options);
    const second = ensureDecoderExport(options);
    expect([first.reused, second.reused, exports]).toEqual([false, true, 1]);
    const plain = ensureDecoderExport({ ...options, attention: { kind: "plain" } });
    const otherModel = ensureDecoderExport({ ...options, modelHash: "m2" });
    expect(new Set([first.folder, plain.folder, otherModel.folder]).size).toBe(3);
    // Nothing but finished exports in the folder.
    expect(readdirSync(cacheFolder).filter((entry) => entry.startsWith("."))).toEqual([]);
  });

  it("replaces a truncated, edited or manifest-less export with a new folder, leaving the old one", () => {
    const cacheFolder = temporaryFolder();
    const options = { cacheFolder, modelHash: "m1", attention, weights: () => weights };
    let { folder, key } = ensureDecoderExport(options);
    const damages = [
      (damaged: string) => truncateSync(join(damaged, externalDataFileName), 100),
      (damaged: string) => {
        const bytes = readFileSync(join(damaged, modelFileName));
        bytes[bytes.length - 1] ^= 1;
        writeFileSync(join(damaged, modelFileName), bytes);
      },
      (damaged: string) => writeFileSync(join(damaged, manifestFileName), "{"),
      (damaged: string) => {
        const manifest = JSON.parse(readFileSync(join(damaged, manifestFileName), "utf8"));
        writeFileSync(join(damaged, manifestFileName), JSON.stringify({ ...manifest, exporterVersion: "0" }));
      },
      (damaged: string) => rmSync(damaged, { recursive: true }),
      () => writeFileSync(join(cacheFolder, `${key}.current`), "../elsewhere"),
      () => rmSync(join(cacheFolder, `${key}.current`)),
    ];
    for (const damage of damages) {
      damage(folder);
      const rebuilt = ensureDecoderExport(options);
      expect(rebuilt.reused).toBe(false);
      expect(rebuilt.folder).not.toBe(folder);
      expect(checkExportFolder(rebuilt.folder, key)).toBeUndefined();
      expect(ensureDecoderExport(options)).toMatchObject({ folder: rebuilt.folder, reused: true });
      folder = rebuilt.folder;
    }
    // Replaced folders stay (a process may have just checked one) until they are an hour old.
    const folders = readdirSync(cacheFolder).filter((entry) => entry.startsWith(`${key}~`));
    expect(folders.length).toBeGreaterThan(2);
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    for (const entry of folders) utimesSync(join(cacheFolder, entry), twoHoursAgo, twoHoursAgo);
    const stale = mkdtempSync(join(cacheFolder, ".partial-crashed-"));
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    ensureDecoderExport({ ...options, modelHash: "m2" });
    const current = folder.split("/").at(-1);
    expect(readdirSync(cacheFolder).filter((entry) => entry.startsWith(`${key}~`))).toEqual([current]);
    expect(existsSync(stale)).toBe(false);
    expect(ensureDecoderExport(options)).toMatchObject({ folder, reused: true });
  });

  it("reports an unwritable cache folder clearly and leaves nothing behind", async () => {
    const parent = temporaryFolder();
    const blocker = join(parent, "a-file");
    writeFileSync(blocker, "not a folder");
    const model = createOnnxRuntimeModel(weights, { cacheFolder: join(blocker, "cache") });
    await expect(model.createSession({ selfExtend, contextSize: 64 })).rejects.toThrow(
      /export cache .*a-file\/cache: cannot create the folder: a parent is a file, not a folder \(ENOTDIR\)/,
    );
    expect(readdirSync(parent)).toEqual(["a-file"]);
  });

  it("removes the partial folder when an export fails half-way", () => {
    const cacheFolder = temporaryFolder();
    const broken: LlamaWeights = {
      ...weights,
      layers: weights.layers.map((layer) => ({ ...layer, gate: layer.gate.subarray(1) })),
    };
    expect(() =>
      ensureDecoderExport({ cacheFolder, modelHash: "broken", attention, weights: () => broken }),
    ).toThrow(/do not fill the shape/);
    expect(readdirSync(cacheFolder)).toEqual([]);
    expect(existsSync(cacheFolder)).toBe(true);
  });
});

describe("writing large external data", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-write-");

  // Node writes at most 2 GiB per call, and a Gemma-2-2B embedding (2.36 GB in float32) once failed
  // the export with ERR_OUT_OF_RANGE; here the pieces are made small so the loop runs many times.
  it("writes every byte at its offset in pieces", () => {
    const path = join(temporaryFolder(), "data");
    const bytes = Uint8Array.from({ length: 1_000_003 }, (_, index) => (index * 31 + 7) % 251);
    const descriptor = openSync(path, "w");
    try {
      writeAllAt(descriptor, new Uint8Array([1, 2, 3]), 0, 2);
      writeAllAt(descriptor, bytes, 16, 65_536);
    } finally {
      closeSync(descriptor);
    }
    const read = readFileSync(path);
    expect(read.byteLength).toBe(16 + bytes.byteLength);
    expect([...read.subarray(0, 4)]).toEqual([1, 2, 3, 0]);
    expect(Buffer.compare(read.subarray(16), Buffer.from(bytes))).toBe(0);
  });
});
