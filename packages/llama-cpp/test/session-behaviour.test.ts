/** The edge behaviour every adapter shares (errors, bad options, dispose), on node-llama-cpp. */
import { describeSessionBehaviour } from "@self-extend/conformance/vitest";
import { createLlamaCppBackend } from "../src/index.js";

describeSessionBehaviour("llama-cpp", () => createLlamaCppBackend({ threads: 1 }), {
  smallBlocks: { batchSize: 4 },
});
