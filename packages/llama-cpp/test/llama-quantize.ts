/**
 * llama.cpp's own llama-quantize, and a small ggml program that dequantises every tensor of a
 * GGUF with ggml's own `to_float`, both built for the quantized-weights tests the way
 * llama-completion.ts builds llama-completion: sources from the llama.cpp release node-llama-cpp
 * bundles, linked against the very prebuilt libllama, libllama-common and ggml libraries
 * node-llama-cpp loads. So the files are quantized, and the expected values dequantised, by the
 * same code llama.cpp runs, never by ours.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { extractLlamaCppSources, locateNodeLlamaCpp } from "../scripts/llama-cpp-sources.mjs";

const packageFolder = join(import.meta.dirname, "..");
const buildFolder = join(packageFolder, "native", "build");

interface PrebuiltLlamaCpp {
  readonly release: string;
  readonly bundle: string;
  readonly libraries: string;
  readonly libraryNames: readonly string[];
}

function prebuiltLlamaCpp(): PrebuiltLlamaCpp {
  const nodeLlamaCpp = locateNodeLlamaCpp(packageFolder);
  const libraries = nodeLlamaCpp.prebuiltBinaries;
  if (libraries === undefined || !existsSync(join(libraries, "libllama-common.so"))) {
    throw new Error(
      `no prebuilt ${process.platform}-${process.arch} llama.cpp libraries beside node-llama-cpp`,
    );
  }
  // libllama-common, libllama(.vX), libggml(.vX), libggml-base; not the CPU variants ggml loads itself.
  const libraryNames = readdirSync(libraries).filter((name) =>
    /^lib(llama-common|llama|ggml|ggml-base)(\.v[\d.]+)?\.so$/.test(name),
  );
  return { release: nodeLlamaCpp.release, bundle: nodeLlamaCpp.bundle, libraries, libraryNames };
}

/** Compiles `sources` into `binary` (once), under a temporary name renamed at the end. */
function buildTool(prebuilt: PrebuiltLlamaCpp, binary: string, includeFolders: string[], sources: string[]) {
  if (existsSync(binary)) return;
  // An interrupted build never leaves a broken binary behind under the cached name.
  const temporary = `${binary}.${process.pid}.tmp`;
  execFileSync(
    process.env.CXX || "c++",
    [
      "-std=c++17",
      "-O1",
      ...includeFolders.map((folder) => `-I${folder}`),
      ...sources,
      "-o",
      temporary,
      `-L${prebuilt.libraries}`,
      ...prebuilt.libraryNames.map((name) => `-l:${name}`),
      `-Wl,-rpath,${prebuilt.libraries}`,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  renameSync(temporary, binary);
}

function quantizeSources(prebuilt: PrebuiltLlamaCpp): string {
  return extractLlamaCppSources(
    prebuilt.bundle,
    ["include", "ggml/include", "common", "vendor", "tools/quantize"],
    join(buildFolder, `llama.cpp-${prebuilt.release}-quantize-sources`),
  );
}

/** Builds (once; cached under native/build) and returns the llama-quantize binary and its library folder. */
export function buildLlamaQuantize(): { binary: string; libraries: string } {
  const prebuilt = prebuiltLlamaCpp();
  const binary = join(buildFolder, `llama-quantize-${prebuilt.release}`);
  if (!existsSync(binary)) {
    const sources = quantizeSources(prebuilt);
    buildTool(
      prebuilt,
      binary,
      ["include", "ggml/include", "common", "vendor", "tools/quantize"].map((folder) =>
        join(sources, folder),
      ),
      [join(sources, "tools/quantize/quantize.cpp"), join(sources, "tools/quantize/main.cpp")],
    );
  }
  return { binary, libraries: prebuilt.libraries };
}

/** Builds (once) the ggml to_float program (ggml-dequantize-tensors.cc). */
export function buildGgmlDequantizer(): { binary: string; libraries: string } {
  const prebuilt = prebuiltLlamaCpp();
  const binary = join(buildFolder, `ggml-dequantize-tensors-${prebuilt.release}`);
  if (!existsSync(binary)) {
    const sources = quantizeSources(prebuilt);
    buildTool(
      prebuilt,
      binary,
      [join(sources, "ggml/include")],
      [join(import.meta.dirname, "ggml-dequantize-tensors.cc")],
    );
  }
  return { binary, libraries: prebuilt.libraries };
}

/** Builds (once) the one-product program (ggml-quantized-product.cc). */
export function buildGgmlQuantizedProduct(): { binary: string; libraries: string } {
  const prebuilt = prebuiltLlamaCpp();
  const binary = join(buildFolder, `ggml-quantized-product-${prebuilt.release}-block-sums`);
  if (!existsSync(binary)) {
    const sources = quantizeSources(prebuilt);
    buildTool(
      prebuilt,
      binary,
      [join(sources, "ggml/include")],
      [join(import.meta.dirname, "ggml-quantized-product.cc")],
    );
  }
  return { binary, libraries: prebuilt.libraries };
}

export interface QuantizedProduct {
  /** The weights after quantizing to the weight type and back (N rows of K). */
  readonly weights: Float32Array;
  /** The activations after ggml's reference quantization to the activation type and back. */
  readonly roundedActivations: Float32Array;
  /** mul_mat(quantized weights, float32 activations) on ggml's CPU backend (M rows of N). */
  readonly products: Float32Array;
  /** Per 32-value block of the weights: the minimum m of Q4_1/Q5_1 blocks, 0 for other types. */
  readonly weightMinima: Float32Array;
  /** Per 32-value block of the rounded activations: the F16 sum a Q8_1 block stores, else the sum. */
  readonly activationSums: Float32Array;
}

/** One quantized matrix product on ggml's CPU backend (see ggml-quantized-product.cc). */
export function ggmlQuantizedProduct(
  shape: { readonly k: number; readonly n: number; readonly m: number },
  types: { readonly weight: number; readonly activation: number },
  weights: Float32Array,
  activations: Float32Array,
  scratch: string,
): QuantizedProduct {
  const { binary, libraries } = buildGgmlQuantizedProduct();
  const input = new Float32Array(weights.length + activations.length);
  input.set(weights);
  input.set(activations, weights.length);
  writeFileSync(`${scratch}.in`, new Uint8Array(input.buffer));
  execFileSync(
    binary,
    [types.weight, types.activation, shape.k, shape.n, shape.m, `${scratch}.in`, `${scratch}.out`].map(
      String,
    ),
    { cwd: libraries, stdio: ["ignore", "pipe", "pipe"] },
  );
  const bytes = readFileSync(`${scratch}.out`);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const { k, n, m } = shape;
  return {
    weights: all.subarray(0, n * k),
    roundedActivations: all.subarray(n * k, n * k + m * k),
    products: all.subarray(n * k + m * k, n * k + m * k + m * n),
    weightMinima: all.subarray(n * k + m * k + m * n, n * k + m * k + m * n + (n * k) / 32),
    activationSums: all.subarray(n * k + m * k + m * n + (n * k) / 32),
  };
}

export interface QuantizeOptions {
  /** llama-quantize's type name: Q4_1, Q2_K, Q4_K_M, ... */
  readonly type: string;
  /** `--pure`: every matrix in `type`, no per-tensor mix (norms stay F32 regardless). */
  readonly pure: boolean;
}

/** Quantizes `input` (an F32 or F16 GGUF) into `output` with llama-quantize. */
export function runLlamaQuantize(input: string, output: string, options: QuantizeOptions): void {
  const { binary, libraries } = buildLlamaQuantize();
  execFileSync(binary, [...(options.pure ? ["--pure"] : []), input, output, options.type, "1"], {
    cwd: libraries,
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 16 * 1024 * 1024,
  });
}

export interface GgmlTensor {
  readonly typeId: number;
  readonly values: Float32Array;
}

/** Every tensor of `file` dequantised by ggml's own to_float, by name. */
export function dequantizeWithGgml(file: string, scratch: string): Map<string, GgmlTensor> {
  const { binary, libraries } = buildGgmlDequantizer();
  const listing = execFileSync(binary, [file, scratch], {
    cwd: libraries,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 16 * 1024 * 1024,
  });
  const bytes = readFileSync(scratch);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const tensors = new Map<string, GgmlTensor>();
  let offset = 0;
  for (const line of listing.trim().split("\n")) {
    const [name, typeId, count] = line.split("\t");
    tensors.set(name, { typeId: Number(typeId), values: all.slice(offset, offset + Number(count)) });
    offset += Number(count);
  }
  if (offset !== all.length) throw new Error(`${scratch} holds ${all.length} values, the listing ${offset}`);
  return tensors;
}
