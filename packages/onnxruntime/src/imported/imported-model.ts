/**
 * A user's own ONNX decoder export (Optimum, onnxruntime-genai's model builder, transformers.js's
 * onnx-community layout) opened with Self-Extend: the graph is read, each layer's attention found
 * (find-attention.ts) and rewritten (rewrite-attention.ts); the rewritten graph is written once per
 * attention setting into the export cache, beside links to the user's external data files, and run
 * by the same session as our own exports.
 *
 * Folder layouts: `model.onnx` with `config.json` or `genai_config.json` beside it, or
 * transformers.js's `onnx/model.onnx` with `config.json` one level up; `tokenizer.json` (and
 * `tokenizer_config.json`) where the configuration is. A path to a `.onnx` file picks that file
 * (e.g. `onnx/model_quantized.onnx`).
 */
import { createHash } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { type ModelInfoV1, type SelfExtendModelV1, SessionDisposedError } from "@self-extend/core";
import { createTokenizerFromJson, type JsonTokenizer } from "@self-extend/models";
import { isOnnxExportPath } from "@self-extend/models/node";
import { type DecoderAttention, modelFileName } from "../decoder-export.js";
import { defaultExportCacheFolder } from "../export-cache.js";
import {
  ModelProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
} from "../generated/onnx/onnx_pb.js";
import { InferenceSessionCache } from "../inference-session-cache.js";
import { encodeModel } from "../onnx-graph-builder.js";
import { loadOnnxRuntime } from "../onnxruntime-loader.js";
import {
  attentionGraphOf,
  OnnxRuntimeSession,
  type OnnxRuntimeSessionOptions,
  ropePositionCount,
  validateOnnxRuntimeSessionOptions,
} from "../onnxruntime-session.js";
import { exporterVersion } from "../version.js";
import { DecoderGraphIndex } from "./decoder-graph-index.js";
import { findAttention, type ImportedLayerAttention, UnsupportedOnnxGraphError } from "./find-attention.js";
import { type ImportedRope, importedRope } from "./imported-rope.js";
import { type ImportedDecoderShape, rewriteImportedDecoder } from "./rewrite-attention.js";

export interface ImportedOnnxModelOptions {
  /** Where rewritten graphs are cached; see defaultExportCacheFolder(). */
  readonly cacheFolder?: string;
  /** ONNX Runtime intra-op threads per run. Default: ONNX Runtime's own choice. */
  readonly threads?: number;
}

export interface ModelFiles {
  readonly modelPath: string;
  /** The folder of config.json / genai_config.json / tokenizer.json. */
  readonly configFolder: string;
}

export function locateFiles(path: string): ModelFiles | undefined {
  if (path.endsWith(".onnx")) {
    const folder = dirname(path);
    const configFolder = hasConfig(folder) ? folder : dirname(folder);
    return { modelPath: path, configFolder };
  }
  for (const candidate of [join(path, modelFileName), join(path, "onnx", modelFileName)]) {
    if (existsSync(candidate)) return { modelPath: candidate, configFolder: path };
  }
  return undefined;
}

function hasConfig(folder: string): boolean {
  return existsSync(join(folder, "config.json")) || existsSync(join(folder, "genai_config.json"));
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (error) {
    throw new UnsupportedOnnxGraphError(
      path,
      `not readable JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}

export interface ImportedConfig extends ImportedDecoderShape {
  readonly architecture: string;
  readonly trainedContext: number;
  readonly embeddingSize: number;
}

/** The shape from config.json (Hugging Face) or genai_config.json (onnxruntime-genai). */
export function readConfig(files: ModelFiles): ImportedConfig {
  const huggingFacePath = join(files.configFolder, "config.json");
  const genaiPath = join(files.configFolder, "genai_config.json");
  const number = (value: unknown, key: string, path: string): number => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
      throw new UnsupportedOnnxGraphError(
        path,
        `${key} is ${JSON.stringify(value)}, expected a positive integer`,
      );
    }
    return value;
  };
  if (existsSync(huggingFacePath)) {
    const config = readJson(huggingFacePath);
    const scaling = config.rope_scaling as { rope_type?: string; type?: string } | null | undefined;
    const scalingType = scaling?.rope_type ?? scaling?.type;
    if (scalingType !== undefined && !["default", "linear", "llama3"].includes(scalingType)) {
      throw new UnsupportedOnnxGraphError(
        huggingFacePath,
        `rope_scaling type "${scalingType}" is not supported (default, linear and llama3 are): its factors change with the sequence length`,
      );
    }
    if (typeof config.sliding_window === "number" && config.use_sliding_window !== false) {
      const window = config.sliding_window;
      const trained = number(config.max_position_embeddings, "max_position_embeddings", huggingFacePath);
      if (window < trained) {
        throw new UnsupportedOnnxGraphError(
          huggingFacePath,
          `sliding_window ${window} is shorter than the trained context ${trained}; Self-Extend needs full attention`,
        );
      }
    }
    const headCount = number(config.num_attention_heads, "num_attention_heads", huggingFacePath);
    const embeddingSize = number(config.hidden_size, "hidden_size", huggingFacePath);
    return {
      architecture: typeof config.model_type === "string" ? config.model_type : "unknown",
      trainedContext: number(config.max_position_embeddings, "max_position_embeddings", huggingFacePath),
      layerCount: number(config.num_hidden_layers, "num_hidden_layers", huggingFacePath),
      headCount,
      kvHeadCount: number(config.num_key_value_heads ?? headCount, "num_key_value_heads", huggingFacePath),
      headSize: number(config.head_dim ?? embeddingSize / headCount, "head_dim", huggingFacePath),
      vocabularySize: number(config.vocab_size, "vocab_size", huggingFacePath),
      embeddingSize,
    };
  }
  if (existsSync(genaiPath)) {
    const config = readJson(genaiPath) as { model?: Record<string, unknown> };
    const model = config.model ?? {};
    const decoder = (model.decoder ?? {}) as Record<string, unknown>;
    return {
      architecture: typeof model.type === "string" ? model.type : "unknown",
      trainedContext: number(model.context_length, "model.context_length", genaiPath),
      layerCount: number(decoder.num_hidden_layers, "model.decoder.num_hidden_layers", genaiPath),
      headCount: number(decoder.num_attention_heads, "model.decoder.num_attention_heads", genaiPath),
      kvHeadCount: number(decoder.num_key_value_heads, "model.decoder.num_key_value_heads", genaiPath),
      headSize: number(decoder.head_size, "model.decoder.head_size", genaiPath),
      vocabularySize: number(model.vocab_size, "model.vocab_size", genaiPath),
      embeddingSize: number(decoder.hidden_size, "model.decoder.hidden_size", genaiPath),
    };
  }
  throw new UnsupportedOnnxGraphError(
    files.modelPath,
    `no config.json or genai_config.json in ${files.configFolder}; the model's shape cannot be known`,
  );
}

export class ImportedOnnxModel implements SelfExtendModelV1 {
  readonly info: ModelInfoV1;
  readonly tokenizer: JsonTokenizer | undefined;
  readonly chatTemplate: string | undefined;
  readonly modelPath: string;
  private readonly inferenceSessions: InferenceSessionCache;
  /**
   * RoPE rows by position count, made once per setting (computed RoPE runs ONNX Runtime for them)
   * and shared read-only by the sessions of that setting.
   */
  private readonly ropeTables = new Map<number, Promise<{ cos: Float32Array; sin: Float32Array }>>();
  private disposed = false;

  private constructor(
    private readonly files: ModelFiles,
    private readonly index: DecoderGraphIndex,
    private readonly config: ImportedConfig,
    private readonly layers: readonly ImportedLayerAttention[],
    private readonly rope: ImportedRope,
    private readonly modelHash: string,
    private readonly options: ImportedOnnxModelOptions,
    tokenizer: JsonTokenizer | undefined,
    chatTemplate: string | undefined,
  ) {
    this.modelPath = files.modelPath;
    this.info = Object.freeze({
      architecture: config.architecture,
      trainedContext: config.trainedContext,
      vocabularySize: config.vocabularySize,
      layerCount: config.layerCount,
      headCount: config.headCount,
      kvHeadCount: config.kvHeadCount,
      headSize: config.headSize,
      name: basename(resolve(files.configFolder)),
    });
    this.tokenizer = tokenizer;
    this.chatTemplate = chatTemplate;
    this.inferenceSessions = new InferenceSessionCache(options.threads);
  }

  /** Reads the export and finds every layer's attention; refuses what cannot be rewritten. */
  static async load(path: string, options: ImportedOnnxModelOptions = {}): Promise<ImportedOnnxModel> {
    const files = locateFiles(path);
    if (files === undefined) {
      throw new UnsupportedOnnxGraphError(path, `no ${modelFileName} in the folder or in its onnx/ folder`);
    }
    const bytes = readFileSync(files.modelPath);
    let model: ReturnType<typeof fromBinary<typeof ModelProtoSchema>>;
    try {
      model = fromBinary(ModelProtoSchema, bytes);
    } catch (error) {
      throw new UnsupportedOnnxGraphError(
        files.modelPath,
        `not an ONNX model (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    const index = new DecoderGraphIndex(model);
    // The key covers the graph's bytes and each external data file's size and modification time
    // (hashing gigabytes of weights on every load would cost more than the rewrite).
    const hash = createHash("sha256").update(bytes).update(exporterVersion);
    const locations = new Set<string>();
    for (const tensor of index.graph.initializer) {
      if (tensor.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
      const location = tensor.externalData.find((entry) => entry.key === "location")?.value;
      if (location !== undefined) locations.add(location);
    }
    for (const location of [...locations].sort()) {
      let stats: ReturnType<typeof statSync>;
      try {
        stats = statSync(join(dirname(files.modelPath), location));
      } catch {
        throw new UnsupportedOnnxGraphError(files.modelPath, `its external data file ${location} is missing`);
      }
      hash.update(`${location}:${stats.size}:${stats.mtimeMs}`);
    }
    const modelHash = hash.digest("hex");
    const config = readConfig(files);
    const logitsOutput = index.graph.output.find((output) => output.name === "logits");
    if (logitsOutput === undefined) {
      throw new UnsupportedOnnxGraphError(
        files.modelPath,
        `the graph has no "logits" output (outputs: ${[...index.graphOutputs].join(", ")})`,
      );
    }
    const logitsType =
      logitsOutput.type?.value.case === "tensorType" ? logitsOutput.type.value.value.elemType : undefined;
    if (logitsType !== TensorProto_DataType.FLOAT) {
      throw new UnsupportedOnnxGraphError(
        files.modelPath,
        "the graph computes in float16 or another type; only float32 activations are supported (float32 or int4-weight exports)",
      );
    }
    const layers = findAttention(index, config, files.modelPath);
    if (layers.length !== config.layerCount) {
      throw new UnsupportedOnnxGraphError(
        files.modelPath,
        `the graph has ${layers.length} attention layers, the configuration says ${config.layerCount}`,
      );
    }
    const rope = await importedRope(
      index,
      layers[0].rotary,
      config.headSize,
      files.modelPath,
      loadOnnxRuntime,
    );
    const tokenizerPath = join(files.configFolder, "tokenizer.json");
    const tokenizerConfigPath = join(files.configFolder, "tokenizer_config.json");
    const tokenizerConfig = existsSync(tokenizerConfigPath) ? readJson(tokenizerConfigPath) : {};
    const tokenizer = existsSync(tokenizerPath)
      ? createTokenizerFromJson(readJson(tokenizerPath), tokenizerConfig)
      : undefined;
    const chatTemplate =
      typeof tokenizerConfig.chat_template === "string" ? tokenizerConfig.chat_template : undefined;

    return new ImportedOnnxModel(
      files,
      index,
      config,
      layers,
      rope,
      modelHash,
      options,
      tokenizer,
      chatTemplate,
    );
  }

  /**
   * The rewritten graph for these attention settings, written once. ONNX Runtime reads external data
   * only from the model's own folder (it resolves links and refuses paths that leave the folder), so
   * the graph goes into the cache beside hard links to the user's data files, or, where the cache is
   * on another file system, beside the user's model as `<model>.self-extend-<setting>.onnx`.
   */
  rewrittenModelPath(attention: DecoderAttention): string {
    const setting =
      attention.kind === "plain"
        ? "plain"
        : `g${attention.selfExtend.groupSize}-w${attention.selfExtend.neighborWindow}`;
    const cached = join(
      this.options.cacheFolder ?? defaultExportCacheFolder(),
      `imported-${this.modelHash.slice(0, 32)}`,
      setting,
      modelFileName,
    );
    const beside = join(
      dirname(this.files.modelPath),
      `${basename(this.files.modelPath, ".onnx")}.self-extend-${setting}.onnx`,
    );
    for (const target of [cached, beside]) if (existsSync(target)) return target;
    const rewritten = rewriteImportedDecoder(
      {
        modelPath: this.files.modelPath,
        index: this.index,
        layers: this.layers,
        shape: this.config,
        rope: { layout: this.rope.layout, rotaryDimension: this.rope.rotaryDimension },
        logitsOutput: "logits",
      },
      attention,
    );
    const locations = new Set<string>();
    for (const tensor of rewritten.graph?.initializer ?? []) {
      if (tensor.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
      const location = tensor.externalData.find((entry) => entry.key === "location")?.value;
      if (location !== undefined) locations.add(location);
    }
    const write = (target: string) => {
      const temporary = `${target}.${process.pid}.tmp`;
      writeFileSync(temporary, encodeModel(rewritten));
      renameSync(temporary, target);
      return target;
    };
    try {
      mkdirSync(dirname(cached), { recursive: true });
      for (const location of locations) {
        const link = join(dirname(cached), location);
        if (!existsSync(link)) linkSync(resolve(dirname(this.files.modelPath), location), link);
      }
      return write(cached);
    } catch (cacheError) {
      try {
        return write(beside);
      } catch (besideError) {
        throw new UnsupportedOnnxGraphError(
          this.files.modelPath,
          `the rewritten graph can be written neither into the cache (${(cacheError as Error).message}) nor beside the model (${(besideError as Error).message})`,
        );
      }
    }
  }

  async createSession(options: OnnxRuntimeSessionOptions): Promise<OnnxRuntimeSession> {
    if (this.disposed) throw new SessionDisposedError("model");
    const config = validateOnnxRuntimeSessionOptions(options, this.info.trainedContext);
    const graph = attentionGraphOf(options, config);
    const attention: DecoderAttention =
      graph === "plain" ? { kind: "plain" } : { kind: "self-extend", selfExtend: config };
    const runtime = await loadOnnxRuntime();
    const inference = this.inferenceSessions.open(runtime, this.rewrittenModelPath(attention));
    const positionCount = ropePositionCount(options.contextSize, config, graph);
    let table = this.ropeTables.get(positionCount);
    if (table === undefined) {
      table = this.rope.prepare(positionCount).then((source) => source(positionCount));
      table.catch(() => this.ropeTables.delete(positionCount));
      this.ropeTables.set(positionCount, table);
    }
    const rows = await table;
    return new OnnxRuntimeSession(runtime, await inference, { ...this.config }, options, config, () => rows);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.ropeTables.clear();
    await this.inferenceSessions.releaseAll();
  }
}

export { isOnnxExportPath };

/** Opens a user's ONNX decoder export (folder or .onnx file) for Self-Extend. */
export function loadImportedOnnxModel(
  path: string,
  options: ImportedOnnxModelOptions = {},
): Promise<ImportedOnnxModel> {
  return ImportedOnnxModel.load(path, options);
}
