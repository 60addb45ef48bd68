import { readLlama2cCheckpoint } from "@self-extend/models";
import { createReferenceModel } from "./src/index.ts";
const model = createReferenceModel(readLlama2cCheckpoint("/work/shared/models/stories260K.bin"));
const tokens = Array.from({ length: 2048 }, (_, i) => (i * 7919 + 13) % 512);
for (const [name, se, allow] of [["plain", { groupSize: 1, neighborWindow: 1 }, false], ["G8W256", { groupSize: 8, neighborWindow: 256 }, false], ["plain", { groupSize: 1, neighborWindow: 1 }, false]] as const) {
  const session = await model.createSession({ selfExtend: se, contextSize: 2048 });
  let t0 = performance.now();
  await session.evaluate(tokens, { logits: "all" });
  const prefill = performance.now() - t0;
  await session.reset();
  t0 = performance.now();
  for (const t of tokens) await session.decode(t);
  console.log(name, "prefill", prefill.toFixed(0), "ms; decode", (performance.now() - t0).toFixed(0), "ms");
}
