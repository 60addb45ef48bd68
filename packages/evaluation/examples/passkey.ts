import { requireTokenizer } from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import { evaluatePasskey, planEvaluationRuns, renderPasskeyHeatmap } from "@self-extend/evaluation";
import { createReferenceBackend } from "@self-extend/reference";

// Any v1 model works; the reference backend and the demo model (trained context 256) run anywhere.
const model = await createReferenceBackend().loadModel({ path: demoModelPath });
const tokenizer = requireTokenizer(model);

// Passkey retrieval at twice the trained context, Self-Extend (planned G and W) against plain.
const runs = planEvaluationRuns({
  lengths: [512],
  trainedContext: model.info.trainedContext,
  comparePlain: true,
  extraTokens: 8, // the answer is generated after the prompt; the plan covers it
});
const cells = await evaluatePasskey(model, tokenizer, { runs, depths: [0.5], trials: 2, seed: 0 });
for (const cell of cells)
  console.log(`${cell.length} tokens, ${cell.label}: ${cell.successes}/${cell.trials.length}`);

const svg = renderPasskeyHeatmap(cells, { title: "demo model", trainedContext: model.info.trainedContext });
console.log(`heatmap: ${svg.length} characters of SVG`);
await model.dispose();
