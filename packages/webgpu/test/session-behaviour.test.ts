/** The edge behaviour every adapter shares (errors, bad options, dispose), on WebGPU. */
import { describeSessionBehaviour } from "@self-extend/conformance/vitest";
import { afterAll } from "vitest";
import { createWebGpuBackend, type WebGpuBackend } from "../src/index.js";

let backend: WebGpuBackend | undefined;
afterAll(async () => (await backend?.getContext())?.destroy());

describeSessionBehaviour(
  "webgpu",
  () => {
    backend = createWebGpuBackend();
    return backend;
  },
  { smallBlocks: { blockSize: 4 } },
);
