/**
 * Where a model comes from. In Node a path is enough (GGUF or llama2.c checkpoint, read through
 * @self-extend/models); a browser has no file system, so a GGUF can also be given as bytes already
 * in memory or as a URL that is fetched. In-memory and fetched sources must be GGUF files.
 */
import type { ModelSourceV1 } from "@self-extend/core";
import {
  hasGgufMagic,
  type LlamaWeights,
  llamaWeightsFromGguf,
  ModelFileError,
  parseGguf,
} from "@self-extend/models";
import { loadWeightsFromPath } from "#node-runtime";

/** A GGUF file already in memory (e.g. from `fetch`, a File input or IndexedDB). */
export interface ModelBytesSource {
  readonly bytes: ArrayBuffer | ArrayBufferView;
  /** Names the model in error messages. Default "<in-memory GGUF>". */
  readonly name?: string;
}

/** A GGUF file fetched with `fetch` (relative URLs resolve against the page). */
export interface ModelUrlSource {
  readonly url: string | URL;
  /** Passed to `fetch` (credentials, headers, an abort signal, ...). */
  readonly init?: RequestInit;
}

/** `{ path }` (Node), `{ bytes }` or `{ url }` (anywhere). */
export type WebGpuModelSource = ModelSourceV1 | ModelBytesSource | ModelUrlSource;

function isNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}

function asBytes(bytes: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw new TypeError("a { bytes } model source must be an ArrayBuffer or an ArrayBufferView");
}

/** Parses a Llama-family GGUF held in memory into float32 weights (no file system needed). */
export function llamaWeightsFromGgufBytes(
  bytes: ArrayBuffer | ArrayBufferView,
  name = "<in-memory GGUF>",
): LlamaWeights {
  const view = asBytes(bytes);
  if (!hasGgufMagic(view)) {
    throw new ModelFileError(
      name,
      `is not a GGUF file (${view.byteLength} bytes, no GGUF magic); in-memory and URL sources must be GGUF`,
    );
  }
  const gguf = parseGguf(view, name);
  try {
    return llamaWeightsFromGguf(gguf);
  } finally {
    gguf.close();
  }
}

/** Reads the weights of any {@link WebGpuModelSource}. */
export async function readModelWeights(source: WebGpuModelSource): Promise<LlamaWeights> {
  if ("bytes" in source && source.bytes !== undefined) {
    return llamaWeightsFromGgufBytes(source.bytes, source.name);
  }
  if ("url" in source && source.url !== undefined) {
    const url = String(source.url);
    let response: Response;
    try {
      response = await fetch(source.url, source.init);
    } catch (error) {
      throw new ModelFileError(url, `cannot be fetched (${(error as Error).message})`);
    }
    if (!response.ok) throw new ModelFileError(url, `cannot be fetched (HTTP ${response.status})`);
    return llamaWeightsFromGgufBytes(await response.arrayBuffer(), url);
  }
  if ("path" in source && typeof source.path === "string") {
    if (!isNode()) {
      throw new ModelFileError(
        source.path,
        "a { path } model source needs Node's file system; in a browser pass { url } or { bytes }",
      );
    }
    return loadWeightsFromPath(source.path);
  }
  throw new TypeError("a model source is { path }, { bytes } or { url }");
}
