/**
 * The built playground in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core,
 * launched as packages/webgpu/test/browser-chromium.test.ts does; WebGPU on SwiftShader).
 *
 * 1. With WebGPU: the page loads the demo model from the built files, runs the passkey prompt it
 *    generates by default (768 tokens = 3 x the trained context 256, key 71432 at depth 0.5) with
 *    Self-Extend and with plain attention, and the key must come back only from Self-Extend.
 *    Screenshots go to screenshots/ (gitignored); PLAYGROUND_SCREENSHOT=update also rewrites
 *    docs/playground.png, the one the README shows.
 * 2. The demo model as a user's file, a short pasted text (inside the trained context, so both
 *    methods are plain attention and must agree), and a bad value rejected in one line.
 * 3. Without WebGPU (Chromium without its WebGPU flag: no adapter; or navigator.gpu removed from
 *    the page): one clear line, no Run button.
 *
 * Nothing here skips: a machine without Chromium fails, naming the install script.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { appFolder, buildPage, servePage } from "./built-page.js";

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const demoModelPath = join(appFolder, "..", "..", "packages", "demo-model", "demo-model.gguf");
const screenshots = join(appFolder, "screenshots");
const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** The built page, served once for both browsers. Not a beforeAll: a failure there reads as skipped. */
let servedPromise: Promise<string> | undefined;
const servedUrl = (): Promise<string> => {
  servedPromise ??= (async () => {
    const built = await buildPage();
    cleanups.push(built.remove);
    const server = await servePage(built.outDir);
    cleanups.push(server.close);
    return server.url;
  })();
  return servedPromise;
};

/**
 * "webgpu": Chromium with its WebGPU flag; "no adapter": without it (navigator.gpu is there but
 * gives no adapter); "no navigator.gpu": with the flag, navigator.gpu removed from the page's thread
 * before any of its scripts run, as in a browser without WebGPU. One Chromium each, shared.
 */
type Browser = "webgpu" | "no adapter" | "no navigator.gpu";
const pages = new Map<Browser, Promise<{ page: Page; errors: string[] }>>();
const openPage = (browser: Browser) => {
  if (!pages.has(browser)) pages.set(browser, startPage(browser));
  return pages.get(browser) as Promise<{ page: Page; errors: string[] }>;
};

async function startPage(kind: Browser): Promise<{ page: Page; errors: string[] }> {
  const webGpu = kind !== "no adapter";
  expect(
    existsSync(executablePath),
    `${executablePath} missing: run scripts/ensure-test-dependencies.sh`,
  ).toBe(true);
  const userDataDir = mkdtempSync(join(tmpdir(), "playground-chromium-"));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const browser: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1100, height: 900 },
    args: [
      ...(webGpu ? ["--enable-unsafe-webgpu"] : []),
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
  // The page must need nothing outside the built files.
  const origin = new URL(await servedUrl()).origin;
  await page.route(
    (url) => url.origin !== origin,
    (route) => {
      errors.push(`request outside the built page: ${route.request().url()}`);
      return route.abort();
    },
  );
  // Counts WebGPU adapter requests made on the page's own (UI) thread; the worker has its own
  // navigator, which this script does not touch.
  await page.addInitScript(() => {
    const counter = globalThis as unknown as { uiThreadAdapterRequests: number };
    counter.uiThreadAdapterRequests = 0;
    const gpu = (navigator as unknown as { gpu?: { requestAdapter: (...args: unknown[]) => unknown } }).gpu;
    if (gpu === undefined) return;
    const requestAdapter = gpu.requestAdapter.bind(gpu);
    gpu.requestAdapter = (...args: unknown[]) => {
      counter.uiThreadAdapterRequests++;
      return requestAdapter(...args);
    };
  });
  if (kind === "no navigator.gpu") {
    await page.addInitScript(() => {
      delete (Navigator.prototype as unknown as { gpu?: unknown }).gpu;
    });
  }
  await page.goto(await servedUrl());
  return { page, errors };
}

const statusText = async (page: Page) => (await page.textContent("#status")) ?? "";
const stateOf = (page: Page) => page.evaluate(() => document.body.dataset.state);

async function waitForState(
  page: Page,
  states: string[],
  errors: string[],
  timeout: number,
): Promise<string> {
  await page
    .waitForFunction((wanted) => wanted.includes(document.body.dataset.state ?? ""), states, { timeout })
    .catch(async () => {
      throw new Error(
        `the page stayed "${await stateOf(page)}" (${await statusText(page)}): ${errors.join("; ") || "no page error"}`,
      );
    });
  return stateOf(page) as Promise<string>;
}

describe("the playground in headless Chromium", () => {
  it("passkey at 3 x the trained context: the key comes back with Self-Extend only", async () => {
    const { page, errors } = await openPage("webgpu");
    expect(await waitForState(page, ["ready", "unavailable"], errors, 60_000), await statusText(page)).toBe(
      "ready",
    );
    await page.click("#run");
    // Streaming: the page shows Self-Extend's tokens before plain attention starts.
    await page.waitForFunction(
      () => (document.getElementById("output-self-extend")?.textContent ?? "") !== "",
      undefined,
      {
        timeout: 180_000,
      },
    );
    expect(await page.textContent("#output-plain")).toBe("");
    expect(await waitForState(page, ["finished", "failed"], errors, 180_000), await statusText(page)).toBe(
      "finished",
    );
    const selfExtend = (await page.textContent("#output-self-extend")) ?? "";
    const plain = (await page.textContent("#output-plain")) ?? "";
    const plan = (await page.textContent("#plan")) ?? "";
    console.log(
      `playground: ${plan}\n  Self-Extend: ${JSON.stringify(selfExtend)}\n  plain: ${JSON.stringify(plain)}`,
    );
    expect(selfExtend).toContain("71432");
    expect(plain).not.toContain("71432");
    // 768 prompt tokens + 8 generated; the planner's G and W and (L - W) * G + W are shown.
    expect(plan).toMatch(/^768 prompt tokens \+ generation = 776 tokens, trained context L = 256\./);
    expect(plan).toMatch(/G = \d+, W = \d+, largest usable context \(L - W\) x G \+ W = \d+/);
    expect(await page.textContent("#speed-self-extend")).toMatch(
      /generation \d+(\.\d)? tokens\/s \(8 tokens\)/,
    );
    expect(await page.textContent("#map-note")).toMatch(
      /^768 x 768, G = \d+, W = \d+: largest relative position \d+ <= L - 1 = 255/,
    );
    expect(errors).toEqual([]);
    // All WebGPU work ran in the worker: the page itself never asked for an adapter.
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { uiThreadAdapterRequests: number }).uiThreadAdapterRequests,
      ),
    ).toBe(0);
    mkdirSync(screenshots, { recursive: true });
    const shot = join(screenshots, "passkey-3x.png");
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.PLAYGROUND_SCREENSHOT === "update")
      copyFileSync(shot, join(appFolder, "docs", "playground.png"));
  });

  it("a GGUF file picked, then dropped, by the user and a pasted text inside the trained context: both methods agree", async () => {
    const { page, errors } = await openPage("webgpu");
    expect(await waitForState(page, ["ready", "finished", "unavailable"], errors, 60_000)).not.toBe(
      "unavailable",
    );
    // The file input is the drop zone's fallback; both hand the page a File, read into bytes.
    await page.setInputFiles("#model-file", demoModelPath);
    expect(await page.isChecked('input[name="model"][value="file"]')).toBe(true);
    // Then dropped on the page, under another name: the dropped file replaces the picked one.
    await page.evaluate((base64) => {
      const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
      const dataTransfer = new DataTransfer();
      dataTransfer.items.add(new File([bytes], "dropped-demo.gguf"));
      window.dispatchEvent(new DragEvent("drop", { dataTransfer, bubbles: true, cancelable: true }));
    }, readFileSync(demoModelPath).toString("base64"));
    expect(await page.textContent("#drop-zone")).toMatch(/^dropped-demo\.gguf \(10\.3 MB\)/);
    await page.check('input[name="prompt"][value="text"]');
    await page.fill(
      "#prompt-text",
      "Once upon a time, there was a little girl named Lily. She loved to play",
    );
    await page.fill("#max-tokens", "6");
    await page.uncheck("#loss-curve");
    await page.click("#run");
    expect(await waitForState(page, ["finished", "failed"], errors, 120_000), await statusText(page)).toBe(
      "finished",
    );
    // N <= L: the planner picks G = 1, so both runs are plain attention and must agree token for token.
    expect(await page.textContent("#plan")).toMatch(/Planner: G = 1, W = 256,/);
    const selfExtend = (await page.textContent("#output-self-extend")) ?? "";
    expect(selfExtend.trim()).not.toBe("");
    expect(await page.textContent("#output-plain")).toBe(selfExtend);
    expect(await page.textContent("#speed-plain")).toMatch(/\(6 tokens\)$/);
    expect(errors).toEqual([]);
  });

  it("bad input: one line naming the field and the rule, and nothing runs", async () => {
    const { page, errors } = await openPage("webgpu");
    expect(await waitForState(page, ["ready", "finished", "failed"], errors, 60_000)).not.toBe("unavailable");
    const before = await page.textContent("#output-self-extend");
    await page.fill("#max-tokens", "0");
    await page.click("#run");
    expect(await stateOf(page)).toBe("failed");
    expect(await statusText(page)).toBe('tokens to generate: "0" must be an integer >= 1');
    expect(await page.textContent("#output-self-extend")).toBe(before);
    await page.fill("#max-tokens", "8");
  });

  it.each([
    ["no adapter", /^WebGPU is not available here: navigator\.gpu returned no adapter .+\.$/],
    ["no navigator.gpu", /^WebGPU is not available here: this browser has no navigator\.gpu .+\.$/],
  ] as const)("without WebGPU (%s): one line saying so, and nothing to run", async (kind, message) => {
    const { page, errors } = await openPage(kind);
    expect(await waitForState(page, ["ready", "unavailable"], errors, 60_000)).toBe("unavailable");
    const status = await statusText(page);
    expect(status).toMatch(message);
    expect(status).not.toContain("\n");
    expect(await page.isDisabled("#run")).toBe(true);
    expect(errors).toEqual([]);
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, `${kind.replaceAll(/[^a-z]+/g, "-")}.png`) });
  });
});
