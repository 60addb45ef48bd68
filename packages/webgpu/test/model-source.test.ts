/**
 * Model sources without a file system: a GGUF as bytes or fetched from a URL gives the same
 * weights as the path, and anything else is refused by name. No GPU needed (weights only).
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type LlamaWeights, loadLlamaWeights, ModelFileError } from "@self-extend/models/node";
import { repositoryRoot, sharedModelPaths } from "@self-extend/test-fixtures";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { llamaWeightsFromGgufBytes, readModelWeights } from "../src/index.js";

const demoModelPath = join(repositoryRoot(), "packages", "demo-model", "demo-model.gguf");
const fileBytes = readFileSync(demoModelPath);
let baseUrl: string;
let closeServer: () => Promise<void>;

beforeAll(async () => {
  const server = createServer((request, response) => {
    if (request.url === "/demo-model.gguf") response.writeHead(200).end(fileBytes);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closeServer = () => new Promise((resolve) => server.close(() => resolve()));
});
afterAll(() => closeServer?.());

/** Bit-identical tensors (compared as bytes: vitest's deep equality is slow on megabytes). */
function expectSameTensor(
  actual: Float32Array | undefined,
  expected: Float32Array | undefined,
  name: string,
) {
  expect(actual === undefined, name).toBe(expected === undefined);
  if (actual === undefined || expected === undefined) return;
  const bytes = (array: Float32Array) => Buffer.from(array.buffer, array.byteOffset, array.byteLength);
  expect(Buffer.compare(bytes(actual), bytes(expected)), name).toBe(0);
}

function expectSameWeights(actual: LlamaWeights, expected: LlamaWeights): void {
  expect(actual.description).toEqual(expected.description);
  expectSameTensor(actual.tokenEmbedding, expected.tokenEmbedding, "tokenEmbedding");
  expectSameTensor(actual.output, expected.output, "output");
  expectSameTensor(actual.outputNorm, expected.outputNorm, "outputNorm");
  expect(actual.layers).toHaveLength(expected.layers.length);
  actual.layers.forEach((layer, index) => {
    const reference = expected.layers[index] as unknown as Record<string, Float32Array | undefined>;
    const names = new Set([...Object.keys(layer), ...Object.keys(reference)]);
    for (const name of names)
      expectSameTensor(
        (layer as unknown as Record<string, Float32Array>)[name],
        reference[name],
        `layer ${index} ${name}`,
      );
  });
}

describe("model sources", () => {
  const fromPath = loadLlamaWeights(demoModelPath);

  it("{ bytes }: an ArrayBuffer, a Uint8Array and an unaligned view give the path's weights", async () => {
    const arrayBuffer = fileBytes.buffer.slice(
      fileBytes.byteOffset,
      fileBytes.byteOffset + fileBytes.byteLength,
    );
    expectSameWeights(await readModelWeights({ bytes: arrayBuffer }), fromPath);
    expectSameWeights(await readModelWeights({ bytes: new Uint8Array(arrayBuffer) }), fromPath);
    const shifted = new Uint8Array(fileBytes.byteLength + 1);
    shifted.set(fileBytes, 1);
    expectSameWeights(llamaWeightsFromGgufBytes(shifted.subarray(1)), fromPath);
  });

  it("{ url }: fetched with fetch; an HTTP error names the URL and status", async () => {
    expectSameWeights(await readModelWeights({ url: `${baseUrl}/demo-model.gguf` }), fromPath);
    await expect(readModelWeights({ url: `${baseUrl}/missing.gguf` })).rejects.toThrow(
      /missing\.gguf: cannot be fetched \(HTTP 404\)/,
    );
  });

  it("in-memory sources must be GGUF: a llama2.c checkpoint as bytes is refused by name", async () => {
    const checkpoint = readFileSync(sharedModelPaths.stories260K);
    const attempt = readModelWeights({ bytes: checkpoint, name: "stories260K.bin" });
    await expect(attempt).rejects.toThrow(ModelFileError);
    await expect(readModelWeights({ bytes: checkpoint, name: "stories260K.bin" })).rejects.toThrow(
      /stories260K\.bin: is not a GGUF file/,
    );
  });

  it("a source that is none of path, bytes or url is a TypeError", async () => {
    await expect(readModelWeights({} as never)).rejects.toThrow(TypeError);
  });
});
