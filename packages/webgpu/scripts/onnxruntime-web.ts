/**
 * onnxruntime-web's WebGPU execution provider in Node, through Dawn as this adapter runs, so that
 * issue 14 can compare the adapter's whole-model decoding with the runtime under transformers.js on
 * the same GPU.
 *
 * Two things make onnxruntime-web (written for browsers) run on Dawn in Node:
 * - `navigator.gpu` and the WebGPU globals (`GPUBufferUsage`, ...) must exist before it loads;
 * - Dawn's Node binding rejects `GPUQueue.writeBuffer` from a view of a SharedArrayBuffer
 *   ("Invalid argument"), and onnxruntime-web's threaded WebAssembly memory is one. Such writes are
 *   copied into a plain buffer first; every other write is passed through untouched.
 *
 * The decoder runs the graphs of the ecosystem's exporters as transformers.js does: past keys and
 * values go in, `present.*` come out and stay on the GPU for the next step. Exports from
 * onnxruntime-genai's builder (no `position_ids`; GroupQueryAttention takes positions from the
 * attention mask) and from Optimum (`position_ids`) both run.
 */
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type * as OnnxRuntimeWeb from "onnxruntime-web/webgpu";

type OnnxRuntime = typeof OnnxRuntimeWeb;

let loadedRuntime: Promise<OnnxRuntime> | undefined;

/**
 * Loads onnxruntime-web once per process. It makes its own device, as in a browser, from a Dawn
 * instance on the backend SELF_EXTEND_WEBGPU_BACKEND names (vulkan, opengles; Dawn's choice when
 * unset or "default"), the variable the adapter's scripts read.
 */
export function loadOnnxRuntimeWeb(): Promise<OnnxRuntime> {
  loadedRuntime ??= (async () => {
    const dawn = (await import("webgpu")) as unknown as {
      create(flags: string[]): GPU;
      globals: Record<string, unknown>;
    };
    for (const [name, value] of Object.entries(dawn.globals)) {
      if (!(name in globalThis)) Object.assign(globalThis, { [name]: value });
    }
    copySharedArrayBufferWrites((dawn.globals.GPUQueue as { prototype: GPUQueue }).prototype);
    const backend = process.env.SELF_EXTEND_WEBGPU_BACKEND;
    const gpu = dawn.create(backend === undefined || backend === "default" ? [] : [`backend=${backend}`]);
    keptInstances.push(gpu);
    const navigatorObject = (globalThis as { navigator?: object }).navigator;
    Object.defineProperty(globalThis, "navigator", {
      value: { ...navigatorObject, gpu },
      configurable: true,
    });
    const runtime = await import("onnxruntime-web/webgpu");
    // One thread: the work is on the GPU, and Node would otherwise start WebAssembly workers.
    runtime.env.wasm.numThreads = 1;
    runtime.env.logLevel = "error";
    return runtime;
  })();
  return loadedRuntime;
}

/** dawn.node tears an instance down when it is garbage-collected, even with a live device. */
const keptInstances: GPU[] = [];

function copySharedArrayBufferWrites(queuePrototype: GPUQueue): void {
  const marked = queuePrototype as GPUQueue & { __selfExtendSharedWrites?: true };
  if (marked.__selfExtendSharedWrites) return;
  const original = queuePrototype.writeBuffer;
  queuePrototype.writeBuffer = function writeBuffer(
    this: GPUQueue,
    buffer: GPUBuffer,
    bufferOffset: number,
    data: Parameters<GPUQueue["writeBuffer"]>[2],
    dataOffset = 0,
    size?: number,
  ): undefined {
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      // Offsets and sizes of a typed array count elements; of a DataView, bytes.
      const elementBytes = "BYTES_PER_ELEMENT" in data ? (data.BYTES_PER_ELEMENT as number) : 1;
      const start = data.byteOffset + dataOffset * elementBytes;
      const length = size === undefined ? data.byteLength - dataOffset * elementBytes : size * elementBytes;
      const copy = new Uint8Array(length);
      copy.set(new Uint8Array(data.buffer, start, length));
      return original.call(this, buffer, bufferOffset, copy, 0, length);
    }
    return original.call(this, buffer, bufferOffset, data, dataOffset, size);
  } as GPUQueue["writeBuffer"];
  marked.__selfExtendSharedWrites = true;
}

/** What a decoder export needs beside its graph, read from the exporter's own config file. */
export interface DecoderExportLayout {
  readonly folder: string;
  readonly graphFile: string;
  /** External weight files (`model.onnx.data`, `model.onnx_data`), by the name the graph uses. */
  readonly externalDataFiles: readonly string[];
  readonly layerCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  readonly vocabularySize: number;
  /** Positions the graph can run (genai's cos/sin caches); undefined when it computes them. */
  readonly contextLimit?: number;
}

/**
 * Reads the layout of an onnxruntime-genai export (`genai_config.json`) or an Optimum export
 * (`config.json` beside `model.onnx`); throws a one-line error for anything else.
 */
export function readDecoderExportLayout(folder: string): DecoderExportLayout {
  const genaiConfig = join(folder, "genai_config.json");
  if (existsSync(genaiConfig)) {
    const { model } = JSON.parse(readFileSync(genaiConfig, "utf8")) as {
      model: {
        context_length: number;
        vocab_size: number;
        decoder: {
          filename: string;
          head_size: number;
          num_hidden_layers: number;
          num_key_value_heads: number;
        };
      };
    };
    return {
      folder,
      graphFile: model.decoder.filename,
      externalDataFiles: externalDataBeside(folder, model.decoder.filename),
      layerCount: model.decoder.num_hidden_layers,
      kvHeadCount: model.decoder.num_key_value_heads,
      headSize: model.decoder.head_size,
      vocabularySize: model.vocab_size,
      contextLimit: model.context_length,
    };
  }
  const config = join(folder, "config.json");
  // Optimum writes model.onnx beside config.json; transformers.js's layout puts it in onnx/.
  const graphFile = ["model.onnx", "onnx/model.onnx"].find((name) => existsSync(join(folder, name)));
  if (existsSync(config) && graphFile !== undefined) {
    const hf = JSON.parse(readFileSync(config, "utf8")) as {
      num_hidden_layers: number;
      num_attention_heads: number;
      num_key_value_heads?: number;
      hidden_size: number;
      head_dim?: number;
      vocab_size: number;
    };
    return {
      folder,
      graphFile,
      externalDataFiles: externalDataBeside(folder, graphFile),
      layerCount: hf.num_hidden_layers,
      kvHeadCount: hf.num_key_value_heads ?? hf.num_attention_heads,
      headSize: hf.head_dim ?? hf.hidden_size / hf.num_attention_heads,
      vocabularySize: hf.vocab_size,
    };
  }
  throw new Error(
    `${folder} is not a decoder export: expected genai_config.json (onnxruntime-genai), or config.json with model.onnx or onnx/model.onnx (Optimum, transformers.js)`,
  );
}

/** A file's bytes, also past readFile's 2 GiB limit (a 1B model's weights can be larger). */
async function readWholeFile(path: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(statSync(path).size);
  let offset = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 * 1024 })) {
    bytes.set(chunk as Buffer, offset);
    offset += (chunk as Buffer).length;
  }
  return bytes;
}

/** External weight files next to the graph, by the names the graph gives them (relative to itself). */
function externalDataBeside(folder: string, graphFile: string): string[] {
  const graphName = basename(graphFile);
  return [`${graphName}.data`, `${graphName}_data`].filter((name) =>
    existsSync(join(folder, dirname(graphFile), name)),
  );
}

/**
 * One sequence through a decoder export on onnxruntime-web's WebGPU provider. `evaluate` runs a
 * block of tokens after those already cached and returns the logits of its last position.
 */
export class OnnxRuntimeWebDecoder {
  private past: Record<string, OnnxRuntimeWeb.Tensor> = {};
  private length = 0;

  private constructor(
    private readonly runtime: OnnxRuntime,
    private readonly session: OnnxRuntimeWeb.InferenceSession,
    readonly layout: DecoderExportLayout,
  ) {
    this.reset();
  }

  static async create(folder: string): Promise<OnnxRuntimeWebDecoder> {
    const layout = readDecoderExportLayout(folder);
    const runtime = await loadOnnxRuntimeWeb();
    const gpuOutputs = [
      "logits",
      ...Array.from({ length: layout.layerCount }, (_, layer) => [
        `present.${layer}.key`,
        `present.${layer}.value`,
      ]),
    ].flat();
    // Read here: onnxruntime-web's own Node file reading needs `require`, which an ES module lacks.
    const session = await runtime.InferenceSession.create(
      await readWholeFile(join(folder, layout.graphFile)),
      {
        executionProviders: ["webgpu"],
        // Errors only: it warns on every session that shape operators run on the CPU, as intended.
        logSeverityLevel: 3,
        externalData: await Promise.all(
          layout.externalDataFiles.map(async (name) => ({
            path: name,
            data: await readWholeFile(join(folder, dirname(layout.graphFile), name)),
          })),
        ),
        // The cache stays on the GPU between steps, as transformers.js keeps it; logits are read back
        // only where they are used.
        preferredOutputLocation: Object.fromEntries(gpuOutputs.map((name) => [name, "gpu-buffer" as const])),
      },
    );
    return new OnnxRuntimeWebDecoder(runtime, session, layout);
  }

  /** onnxruntime-web's version, as it reports it. */
  get runtimeVersion(): string {
    return this.runtime.env.versions.web ?? "unknown";
  }

  /** Tokens in the cache. */
  get cachedTokens(): number {
    return this.length;
  }

  /** Forgets the sequence (the cache's GPU buffers are released). */
  reset(): void {
    this.disposePast();
    const empty = new Float32Array(0);
    for (let layer = 0; layer < this.layout.layerCount; layer++) {
      for (const part of ["key", "value"]) {
        this.past[`past_key_values.${layer}.${part}`] = new this.runtime.Tensor("float32", empty, [
          1,
          this.layout.kvHeadCount,
          0,
          this.layout.headSize,
        ]);
      }
    }
    this.length = 0;
  }

  /** Runs `tokens` after the cached ones; returns the logits of the last of them. */
  async evaluate(tokens: readonly number[]): Promise<Float32Array> {
    const logits = await this.run(tokens);
    const data = (await logits.getData(true)) as Float32Array;
    const vocabulary = logits.dims[logits.dims.length - 1];
    // Exporters return logits for every position of the block, or only the last.
    return data.slice(data.length - vocabulary);
  }

  /**
   * Evaluates a prompt in blocks of at most `blockSize` tokens; returns the last logits. Only the
   * last block's logits leave the GPU (a block's are blockSize x vocabulary floats).
   */
  async prefill(tokens: readonly number[], blockSize: number): Promise<Float32Array> {
    if (tokens.length === 0) throw new RangeError("prefill needs at least one token");
    const lastStart = Math.floor((tokens.length - 1) / blockSize) * blockSize;
    for (let start = 0; start < lastStart; start += blockSize) {
      (await this.run(tokens.slice(start, start + blockSize))).dispose();
    }
    return this.evaluate(tokens.slice(lastStart));
  }

  private async run(tokens: readonly number[]): Promise<OnnxRuntimeWeb.Tensor> {
    if (tokens.length === 0) throw new RangeError("evaluate needs at least one token");
    const total = this.length + tokens.length;
    if (this.layout.contextLimit !== undefined && total > this.layout.contextLimit) {
      throw new RangeError(
        `${total} tokens is past this export's ${this.layout.contextLimit} positions (genai_config.json context_length)`,
      );
    }
    const { Tensor } = this.runtime;
    const feeds: Record<string, OnnxRuntimeWeb.Tensor> = {
      ...this.past,
      input_ids: new Tensor("int64", BigInt64Array.from(tokens, BigInt), [1, tokens.length]),
      attention_mask: new Tensor("int64", new BigInt64Array(total).fill(1n), [1, total]),
    };
    if (this.session.inputNames.includes("position_ids")) {
      const positions = BigInt64Array.from(tokens, (_, index) => BigInt(this.length + index));
      feeds.position_ids = new Tensor("int64", positions, [1, tokens.length]);
    }
    const outputs = await this.session.run(feeds);
    this.disposePast();
    for (let layer = 0; layer < this.layout.layerCount; layer++) {
      this.past[`past_key_values.${layer}.key`] = outputs[`present.${layer}.key`];
      this.past[`past_key_values.${layer}.value`] = outputs[`present.${layer}.value`];
    }
    this.length = total;
    return outputs.logits;
  }

  async release(): Promise<void> {
    this.disposePast();
    await this.session.release();
  }

  private disposePast(): void {
    for (const tensor of Object.values(this.past)) {
      if (tensor.location === "gpu-buffer") tensor.dispose();
    }
    this.past = {};
  }
}
