/**
 * The models a suite runs on, each materialised as a GGUF file that the reference and every
 * adapter load from the same path: generated tiny models (need nothing), stories260K imported from
 * the shared folder beside the checkout, or a user's own file.
 */
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { demoModelPath } from "@self-extend/demo-model";
import {
  describeLlamaModel,
  generateTinyModel,
  importLlama2c,
  readGguf,
  tinyModelGrid,
  tinyModelSpec,
  writeLlamaGguf,
} from "@self-extend/models/node";

export interface ConformanceModel {
  /** `tiny:<name>`, `demo`, `stories260K` or `user`. */
  readonly id: string;
  readonly path: string;
  readonly architecture: string;
  readonly trainedContext: number;
  readonly vocabularySize: number;
  readonly bosToken: number;
  /** The ggml types of its matrices (`F32`, `Q4_K`, `Q6_K`, ...), sorted: what picks its tolerance. */
  readonly weightTypes: readonly string[];
  /** Its feed-forward activation (`silu`, or Gemma's `gelu-tanh`), which may pick a tolerance too. */
  readonly activation: string;
  /** The window of its sliding-window (local) layers, if it has any (Gemma 2 and 3): plans cover it. */
  readonly slidingWindow?: number;
  /** The same weights in another form for some backends, by backend name (see userModelBackendPaths). */
  readonly backendPaths?: Readonly<Record<string, string>>;
}

/** The types of the matrices (tensors of two or more dimensions; norms and biases are F32 anyway). */
function matrixWeightTypes(
  tensors: readonly { readonly typeName: string; readonly dimensions: readonly number[] }[],
): string[] {
  const names = new Set(
    tensors.filter((tensor) => tensor.dimensions.length >= 2).map((tensor) => tensor.typeName),
  );
  return [...names].sort();
}

export interface ModelLocations {
  /** Where generated and imported GGUF files are written. Default: the OS temp folder. */
  readonly cacheFolder?: string;
  /** The shared data folder holding models/stories260K.bin and models/tok512.bin. */
  readonly sharedFolder?: string;
  /** A user's GGUF, for the `user` model. */
  readonly userModelPath?: string;
  /**
   * The user's model in another form for some backends, by backend name: a user's ONNX export for
   * `onnxruntime`, while `userModelPath` is the GGUF its weights were read into, which the
   * reference (and every other adapter) runs.
   */
  readonly userModelBackendPaths?: Readonly<Record<string, string>>;
  /** Seed of the generated tiny models. Default 1. */
  readonly tinyModelSeed?: number;
}

export const defaultCacheFolder = join(tmpdir(), "self-extend-conformance");

/** Expands `tiny:*` and drops `user` unless a user model was given (then only `user` runs). */
export function expandModelIds(ids: readonly string[], hasUserModel: boolean): string[] {
  if (hasUserModel) return ids.includes("user") ? ["user"] : [];
  return ids.flatMap((id) =>
    id === "tiny:*" ? tinyModelGrid.map((spec) => `tiny:${spec.name}`) : id === "user" ? [] : [id],
  );
}

function describe(id: string, path: string): ConformanceModel {
  const gguf = readGguf(path);
  try {
    const description = describeLlamaModel(gguf, path);
    const bos = gguf.metadata.get("tokenizer.ggml.bos_token_id");
    return {
      id,
      path,
      architecture: description.architecture,
      trainedContext: description.trainedContext,
      vocabularySize: description.vocabularySize,
      bosToken: bos === undefined ? 1 : Number(bos),
      weightTypes: matrixWeightTypes(gguf.tensors),
      activation: description.feedForwardActivation ?? "silu",
      ...(description.slidingWindow === undefined ? {} : { slidingWindow: description.slidingWindow.size }),
    };
  } finally {
    gguf.close();
  }
}

/** Writes (once) and describes the GGUF for a model id. Files are written atomically by the models package. */
export function prepareModel(id: string, locations: ModelLocations = {}): ConformanceModel {
  const cacheFolder = locations.cacheFolder ?? defaultCacheFolder;
  mkdirSync(cacheFolder, { recursive: true });
  if (id === "user") {
    if (locations.userModelPath === undefined) throw new RangeError("the `user` model needs a model path");
    const described = describe(id, resolve(locations.userModelPath));
    return locations.userModelBackendPaths === undefined
      ? described
      : { ...described, backendPaths: locations.userModelBackendPaths };
  }
  if (id === "demo") {
    // Our own trained model, shipped inside @self-extend/demo-model: needs nothing beside the checkout.
    return describe(id, demoModelPath);
  }
  if (id === "stories260K") {
    const shared = locations.sharedFolder;
    if (shared === undefined)
      throw new RangeError(
        "stories260K needs a data folder holding models/stories260K.bin and models/tok512.bin (--shared <dir>)",
      );
    const checkpointPath = join(shared, "models", "stories260K.bin");
    const tokenizerPath = join(shared, "models", "tok512.bin");
    for (const input of [checkpointPath, tokenizerPath]) {
      if (!existsSync(input)) throw new RangeError(`stories260K needs ${input}, which does not exist`);
    }
    const path = join(cacheFolder, "stories260K.gguf");
    if (!existsSync(path)) importLlama2c({ checkpointPath, tokenizerPath, outPath: path });
    return describe(id, path);
  }
  if (id.startsWith("tiny:")) {
    const seed = locations.tinyModelSeed ?? 1;
    const spec = tinyModelSpec(id.slice("tiny:".length));
    const path = join(cacheFolder, `tiny-${spec.name}-seed${seed}.gguf`);
    if (!existsSync(path)) writeLlamaGguf(path, generateTinyModel(spec, seed), { name: spec.name });
    return describe(id, path);
  }
  throw new RangeError(`unknown conformance model ${JSON.stringify(id)}`);
}
