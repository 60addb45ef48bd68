/**
 * The conformance suite (@self-extend/conformance) on this adapter: every case on every model
 * (the generated grid, the demo model, stories260K), position maps computed on the device by the
 * kernel's own position functions, with the tolerances the adapter declares
 * (conformance/tolerances.json, the suite's schema). One device for every case.
 */
import { describeConformance } from "@self-extend/conformance/vitest";
import { sharedPath } from "@self-extend/test-fixtures";
import { afterAll } from "vitest";
import { conformanceDeclaration, createWebGpuBackend } from "../src/index.js";

// No skip: without an adapter the suite reports the backend as not available, which fails here.
const backend = createWebGpuBackend();
afterAll(async () => {
  if ((await backend.checkAvailability()).available) (await backend.getContext()).destroy();
});

describeConformance("webgpu", () => backend, {
  declaration: conformanceDeclaration,
  sharedFolder: sharedPath(),
});
