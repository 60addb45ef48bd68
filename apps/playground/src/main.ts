/**
 * The page: reads the controls, hands a run to the inference worker (never WebGPU work on this
 * thread) and draws what comes back. `document.body.dataset.state` says where the page is
 * (loading, ready, running, finished, failed, unavailable); the browser test waits on it.
 */
import { validateSelfExtendConfig } from "@self-extend/core";
import demoModelUrl from "@self-extend/demo-model/demo-model.gguf?url";
import { drawLossChart } from "./loss-chart.js";
import type {
  Method,
  ModelChoice,
  PageMessage,
  PromptChoice,
  RunRequest,
  WorkerMessage,
} from "./messages.js";
import { drawPositionMap } from "./position-map-view.js";

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => element<HTMLInputElement>(id);
const checked = (name: string) =>
  (document.querySelector(`input[name="${name}"]:checked`) as HTMLInputElement).value;

const status = element("status");
const runButton = element<HTMLButtonElement>("run");
const mapCanvas = element<HTMLCanvasElement>("position-map");
const lossCanvas = element<HTMLCanvasElement>("loss-chart");
const methods: readonly Method[] = ["self-extend", "plain"];

function setState(state: string, message: string): void {
  document.body.dataset.state = state;
  status.textContent = message;
  runButton.disabled = state !== "ready" && state !== "finished" && state !== "failed";
}

/** Bad input: a one-line message naming the field, the value and the rule; nothing runs. */
class InputError extends Error {}

function integerField(id: string, label: string, smallest: number): number {
  const value = Number(input(id).value);
  if (!Number.isInteger(value) || value < smallest) {
    throw new InputError(`${label}: "${input(id).value}" must be an integer >= ${smallest}`);
  }
  return value;
}

function redrawMap(): void {
  const note = element("map-note");
  try {
    const config = validateSelfExtendConfig({
      groupSize: integerField("map-group", "map G", 1),
      neighborWindow: integerField("map-window", "map W", 1),
    });
    const length = integerField("map-length", "map N", 1);
    note.textContent = drawPositionMap(mapCanvas, config, length, integerField("map-trained", "map L", 1));
  } catch (error) {
    note.textContent = (error as Error).message;
  }
}

// A dropped or picked GGUF file, read when a run starts.
let droppedFile: File | undefined;
function chooseFile(file: File | undefined): void {
  if (file === undefined) return;
  droppedFile = file;
  element("drop-zone").firstChild!.textContent = `${file.name} (${(file.size / 1e6).toFixed(1)} MB) `;
  input("model-file")
    .closest("label")!
    .querySelector<HTMLInputElement>('input[type="radio"]')!.checked = true;
}

/** The chosen model: a URL, or the user's File (read into bytes once the run starts). */
function modelChoice(): ModelChoice | File {
  const kind = checked("model");
  if (kind === "demo") return { kind: "url", url: new URL(demoModelUrl, location.href).href };
  if (kind === "url") {
    const text = input("model-url").value.trim();
    if (text === "") throw new InputError("model URL: empty; give the address of a .gguf file");
    return { kind: "url", url: new URL(text, location.href).href };
  }
  if (droppedFile === undefined)
    throw new InputError("model file: none chosen; drop a .gguf file or pick one");
  return droppedFile;
}

function promptChoice(): PromptChoice {
  if (checked("prompt") === "text") {
    const text = element<HTMLTextAreaElement>("prompt-text").value;
    if (text.trim() === "")
      throw new InputError("prompt text: empty; paste a text or choose the passkey prompt");
    return { kind: "text", text };
  }
  const depth = Number(input("passkey-depth").value);
  if (!(depth >= 0 && depth <= 1))
    throw new InputError(`passkey depth: "${input("passkey-depth").value}" must be between 0 and 1`);
  const key = input("passkey-key").value.trim();
  if (!/^\d+$/.test(key)) throw new InputError(`passkey key: "${key}" must be digits`);
  return { kind: "passkey", length: integerField("passkey-length", "passkey length", 16), key, depth };
}

const worker = new Worker(new URL("./inference-worker.ts", import.meta.url), { type: "module" });
const post = (message: PageMessage, transfer: Transferable[] = []) =>
  worker.postMessage(message, { transfer });
const losses = new Map<Method, Float32Array>();
let trainedContext: number | undefined;

worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
  const message = event.data;
  switch (message.type) {
    case "available":
      setState("ready", `WebGPU ready (${message.adapter || "adapter"}).`);
      break;
    case "unavailable":
      setState("unavailable", `WebGPU is not available here: ${message.reason}.`);
      break;
    case "plan": {
      const { plan } = message;
      trainedContext = plan.trainedContext;
      const { groupSize, neighborWindow } = plan.selfExtend;
      element("plan").textContent =
        `${plan.promptTokens} prompt tokens + generation = ${plan.contextSize} tokens, trained context L = ${plan.trainedContext}. ` +
        `Planner: G = ${groupSize}, W = ${neighborWindow}, largest usable context (L - W) x G + W = ${plan.largestUsableContext}. ${plan.reason}.`;
      input("map-length").value = String(plan.promptTokens);
      input("map-group").value = String(groupSize);
      input("map-window").value = String(neighborWindow);
      input("map-trained").value = String(plan.trainedContext);
      redrawMap();
      setState("running", "Self-Extend: prefilling…");
      break;
    }
    case "loss":
      losses.set(message.method, message.losses);
      drawLossChart(lossCanvas, losses, trainedContext);
      break;
    case "tokens":
      element(`output-${message.method}`).textContent = message.text;
      element(`speed-${message.method}`).textContent =
        `prefill ${message.prefillTokensPerSecond.toFixed(0)} tokens/s, generation ${message.decodeTokensPerSecond.toFixed(1)} tokens/s (${message.generated} tokens)`;
      setState("running", `${message.method === "plain" ? "Plain attention" : "Self-Extend"}: generating…`);
      break;
    case "finished":
      setState("finished", "Done: Self-Extend and plain attention on the same prompt.");
      break;
    case "failed":
      setState("failed", `Failed: ${message.message}`);
      break;
  }
};

runButton.addEventListener("click", async () => {
  let choices: Omit<RunRequest, "model"> & { model: ModelChoice | File };
  try {
    choices = {
      type: "run",
      model: modelChoice(),
      prompt: promptChoice(),
      maxTokens: integerField("max-tokens", "tokens to generate", 1),
      lossCurve: input("loss-curve").checked,
    };
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    setState("failed", error.message);
    return;
  }
  // Before any await: from the click on, the page reads as running.
  setState("running", "Loading the model…");
  for (const method of methods) {
    element(`output-${method}`).textContent = "";
    element(`speed-${method}`).textContent = "";
  }
  element("plan").textContent = "";
  losses.clear();
  drawLossChart(lossCanvas, losses, undefined);
  const { model } = choices;
  const request: RunRequest = {
    ...choices,
    model:
      model instanceof File ? { kind: "bytes", name: model.name, bytes: await model.arrayBuffer() } : model,
  };
  post(request, request.model.kind === "bytes" ? [request.model.bytes] : []);
});

for (const id of ["map-length", "map-group", "map-window", "map-trained"])
  input(id).addEventListener("input", redrawMap);
input("model-file").addEventListener("change", () => chooseFile(input("model-file").files?.[0]));
window.addEventListener("dragover", (event) => {
  event.preventDefault();
  document.body.classList.add("dragging");
});
window.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
window.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  chooseFile(event.dataTransfer?.files[0]);
});

redrawMap();
if (!("gpu" in navigator)) {
  setState(
    "unavailable",
    "WebGPU is not available here: this browser has no navigator.gpu (try a recent Chrome or Edge, or enable WebGPU).",
  );
} else {
  post({ type: "check" });
}
