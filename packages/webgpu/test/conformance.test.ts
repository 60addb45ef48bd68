/**
 * The conformance suite (@self-extend/conformance) on this adapter: every case on every model
 * (the generated grid, the demo model, stories260K), position maps computed on the device by the
 * kernel's own position functions, with the tolerances the adapter declares
 * (conformance/tolerances.json, the suite's schema). One device for every case of a run; the suite
 * runs twice, once per way of getting group-level keys (WebGpuModelOptions.groupKeys).
 */
import { describeConformance } from "@self-extend/conformance/vitest";
import { sharedPath } from "@self-extend/test-fixtures";
import { afterAll } from "vitest";
import { conformanceDeclaration, createWebGpuBackend } from "../src/index.js";

// No skip: without an adapter the suite reports the backend as not available, which fails here.
const backend = createWebGpuBackend();
// The group-level keys rotated back inside the kernel, the GPUs' default; the run above takes the
// device's default, which on the CPU implementations tests run on is the cached copy.
const derivedGroupKeys = createWebGpuBackend({ groupKeys: "derived" });
afterAll(async () => {
  for (const each of [backend, derivedGroupKeys]) {
    if ((await each.checkAvailability()).available) (await each.getContext()).destroy();
  }
});

describeConformance("webgpu", () => backend, {
  declaration: conformanceDeclaration,
  sharedFolder: sharedPath(),
});

describeConformance("webgpu, group keys derived in the kernel", () => derivedGroupKeys, {
  declaration: conformanceDeclaration,
  sharedFolder: sharedPath(),
});
