/**
 * The attention kernel in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core;
 * Playwright never downloads a browser here). Chromium's WebGPU runs on SwiftShader with smaller
 * limits than Dawn-on-GLES in Node (256 invocations per workgroup), which the kernel must adapt to.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import type { PageResult } from "./browser/kernel-page.js";
import { serveSources } from "./browser/serve-sources.js";

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe("headless Chromium", () => {
  it("fused and two-pass kernels match core's reference on the browser's WebGPU", async () => {
    // No skip: a machine without Chromium fails here, naming the install script.
    expect(
      existsSync(executablePath),
      `${executablePath} missing: run packages/webgpu/scripts/install-ci-dependencies.sh`,
    ).toBe(true);
    const server = await serveSources();
    cleanups.push(server.close);
    const userDataDir = mkdtempSync(join(tmpdir(), "webgpu-chromium-"));
    cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
    const browser = await chromium.launchPersistentContext(userDataDir, {
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
});
