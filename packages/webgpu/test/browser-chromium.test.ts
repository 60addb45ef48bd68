/**
 * The package in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core;
 * Playwright never downloads a browser here). Chromium's WebGPU runs on SwiftShader with smaller
 * limits than Dawn-on-GLES in Node (256 invocations per workgroup), which the kernels must adapt to.
 *
 * 1. The attention kernels alone against core's float64 reference.
 * 2. The whole forward pass: the page fetches the demo model's GGUF from this test's server,
 *    prefills a prompt of 3x its trained context with Self-Extend and generates greedily; Node
 *    runs the same through the reference backend, and tokens must be identical and logits within
 *    the webgpu tolerance of the conformance suite's data (packages/conformance/data).
 *
 * Nothing here skips: a machine without Chromium or WebGPU fails, naming the install script.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// The suite's own tolerance data and comparison: the same numbers `self-extend conformance`
// applies to this adapter.
import {
  compareLogProbabilities,
  largestDifference,
  loadTolerances,
  logSoftmaxRows,
  resolveTolerance,
} from "@self-extend/conformance";
import { argmax, planSelfExtend } from "@self-extend/core";
import { readGguf, tokenizerFromGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { repositoryRoot, sharedModelPaths } from "@self-extend/test-fixtures";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import type { ForwardPassRequest, ForwardPassResult } from "./browser/forward-page.js";
import type { PageResult } from "./browser/kernel-page.js";
import { serveSources } from "./browser/serve-sources.js";

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const demoModelPath = join(repositoryRoot(), "packages", "demo-model", "demo-model.gguf");
const cleanups: (() => Promise<void> | void)[] = [];

/**
 * Chromium with the test page, started by the first test that needs it. Not a beforeAll: a setup
 * failure there reports the tests as skipped, and CI must see them fail.
 */
let pagePromise: Promise<Page> | undefined;
const openPage = (): Promise<Page> => {
  pagePromise ??= startPage();
  return pagePromise;
};

async function startPage(): Promise<Page> {
  expect(
    existsSync(executablePath),
    `${executablePath} missing: run packages/webgpu/scripts/install-ci-dependencies.sh`,
  ).toBe(true);
  expect(existsSync(demoModelPath), `${demoModelPath} missing`).toBe(true);
  const server = await serveSources({ "demo-model.gguf": demoModelPath });
  cleanups.push(server.close);
  const userDataDir = mkdtempSync(join(tmpdir(), "webgpu-chromium-"));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const browser: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      "--enable-unsafe-webgpu",
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("response", (response) => {
    if (response.status() >= 400) errors.push(`${response.status()} ${response.url()}`);
  });
  await page.goto(server.url);
  await page
    .waitForFunction(() => (globalThis as unknown as { ready?: boolean }).ready === true, undefined, {
      timeout: 30000,
    })
    .catch(() => {
      throw new Error(`the test page did not load: ${errors.join("; ") || "no page error"}`);
    });
  return page;
}

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe("headless Chromium", () => {
  it("fused and two-pass kernels match core's reference on the browser's WebGPU", async () => {
    const page = await openPage();
    const cases = [
      {
        name: "G=4 W=16 prefill, GQA 4:1",
        headCount: 4,
        kvHeadCount: 1,
        headSize: 32,
        layout: "interleaved",
        config: { groupSize: 4, neighborWindow: 16 },
        keyCount: 200,
        queryCount: 200,
      },
      {
        name: "G=8 W=32 decode, half-split",
        headCount: 4,
        kvHeadCount: 2,
        headSize: 64,
        layout: "half-split",
        config: { groupSize: 8, neighborWindow: 32 },
        keyCount: 600,
        queryCount: 1,
      },
      {
        name: "G=1 plain decode",
        headCount: 2,
        kvHeadCount: 2,
        headSize: 16,
        layout: "interleaved",
        config: { groupSize: 1, neighborWindow: 1 },
        keyCount: 300,
        queryCount: 1,
      },
    ];
    const result = (await page.evaluate(
      (pageCases) =>
        (globalThis as unknown as { runKernelChecks: (c: unknown) => Promise<unknown> }).runKernelChecks(
          pageCases,
        ),
      cases,
    )) as PageResult;
    console.log(
      `chromium adapter: ${result.adapter}; maxComputeInvocationsPerWorkgroup ${result.limits.maxComputeInvocationsPerWorkgroup}`,
    );
    for (const entry of result.cases) {
      expect(entry.fused, `${entry.name} (fused)`).toBeLessThan(2e-5);
      expect(entry.twoPass, `${entry.name} (two-pass)`).toBeLessThan(2e-5);
    }
    expect(result.cases).toHaveLength(cases.length);
  });

  it("the full forward pass: demo model GGUF fetched by the page, prompt of 3 x L with Self-Extend, 64 greedy tokens, against the reference in Node", async () => {
    const page = await openPage();
    const generatedTokens = 64;
    const gguf = readGguf(demoModelPath);
    const tokenizer = tokenizerFromGguf(gguf);
    gguf.close();
    const referenceModel = await createReferenceBackend().loadModel({ path: demoModelPath });
    const { trainedContext } = referenceModel.info;
    const text = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 20000);
    const prompt = tokenizer.encode(text, { addBos: true }).slice(0, 3 * trainedContext);
    expect(prompt).toHaveLength(3 * trainedContext);
    const { config: selfExtend } = planSelfExtend({
      trainedContext,
      targetContext: prompt.length + generatedTokens,
    });
    expect(selfExtend.groupSize).toBeGreaterThan(1);
    // Rows around the window and the trained context, where positions change regime.
    const promptRows = [0, selfExtend.neighborWindow, trainedContext - 1, trainedContext, 2 * trainedContext];
    const request: ForwardPassRequest = {
      modelUrl: "/files/demo-model.gguf",
      prompt,
      selfExtend,
      generatedTokens,
      promptRows,
    };
    const started = performance.now();
    const browser = (await page.evaluate(
      (pageRequest) =>
        (globalThis as unknown as { runForwardPass: (r: unknown) => Promise<unknown> }).runForwardPass(
          pageRequest,
        ),
      request,
    )) as ForwardPassResult;
    const browserMs = performance.now() - started;

    // The reference in Node, greedy on its own logits.
    const contextSize = prompt.length + generatedTokens;
    const session = await referenceModel.createSession({ selfExtend, contextSize });
    const evaluation = await session.evaluate(prompt, { logits: [...promptRows, prompt.length - 1] });
    const { vocabularySize } = evaluation;
    const referencePromptLogits = evaluation.logits.subarray(0, promptRows.length * vocabularySize);
    let logits = evaluation.logits.subarray(promptRows.length * vocabularySize);
    const referenceTokens: number[] = [];
    const referenceGenerationLogits = new Float32Array(generatedTokens * vocabularySize);
    for (let step = 0; step < generatedTokens; step++) {
      referenceGenerationLogits.set(logits, step * vocabularySize);
      referenceTokens.push(argmax(logits));
      if (step === generatedTokens - 1) break;
      logits = await session.decode(referenceTokens[step]);
    }
    await session.dispose();
    await referenceModel.dispose();

    expect(browser.trainedContext).toBe(trainedContext);
    expect(browser.vocabularySize).toBe(vocabularySize);
    expect(browser.tokens, "greedy tokens, Chromium WebGPU against the reference").toEqual(referenceTokens);

    const tolerance = resolveTolerance(loadTolerances(), { backend: "webgpu", cachePrecision: "float32" });
    const browserPromptLogits = Float32Array.from(browser.promptLogits.flat());
    const browserGenerationLogits = Float32Array.from(browser.generationLogits.flat());
    const promptRaw = largestDifference(browserPromptLogits, referencePromptLogits);
    const generationRaw = largestDifference(browserGenerationLogits, referenceGenerationLogits);
    const compare = (actual: Float32Array, expected: Float32Array) =>
      compareLogProbabilities(
        logSoftmaxRows(actual, vocabularySize),
        logSoftmaxRows(expected, vocabularySize),
        vocabularySize,
        tolerance,
      );
    const promptComparison = compare(browserPromptLogits, referencePromptLogits);
    const generationComparison = compare(browserGenerationLogits, referenceGenerationLogits);
    console.log(
      `chromium forward pass (${browser.adapter}, f16 ${browser.float16}): ${prompt.length}-token prompt, ` +
        `L = ${trainedContext}, G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow}, ${generatedTokens} greedy tokens identical; ` +
        `largest |logit difference| prompt rows ${promptRaw.toExponential(2)}, generation ${generationRaw.toExponential(2)}; ` +
        `|log-probability difference| ${Math.max(promptComparison.largestDifference, generationComparison.largestDifference).toExponential(2)} ` +
        `(webgpu tolerance atol ${tolerance.atol}, rtol ${tolerance.rtol}); ` +
        `page: load ${browser.timings.loadMs.toFixed(0)} ms, prefill ${browser.timings.prefillMs.toFixed(0)} ms, ` +
        `decode ${browser.timings.decodeMs.toFixed(0)} ms; whole page call ${browserMs.toFixed(0)} ms`,
    );
    expect(promptComparison.failingPositions, "prompt rows outside the tolerance").toEqual([]);
    expect(generationComparison.failingPositions, "generation rows outside the tolerance").toEqual([]);
    // Raw logits too (the conformance test of this package compares them directly).
    expect(promptRaw).toBeLessThanOrEqual(tolerance.atol);
    expect(generationRaw).toBeLessThanOrEqual(tolerance.atol);
  });
});
