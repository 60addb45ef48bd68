/** The shared edge behaviour (errors, bad options, dispose) on the reference backend. */
import { createReferenceBackend } from "@self-extend/reference";
import { describeSessionBehaviour } from "../src/vitest.js";

describeSessionBehaviour("reference", () => createReferenceBackend(), { smallBlocks: { blockSize: 4 } });
