import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createReferenceBackend } from "@self-extend/reference";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

const stories = ["--model", sharedModelPaths.stories260K, "--tokenizer", sharedModelPaths.tokenizer];

async function cli(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

const published =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

describe("self-extend import-llama2c", () => {
  const temporary = useTemporaryFolder();

  it("writes the same GGUF twice and refuses to overwrite without --force", async () => {
    const folder = temporary();
    const out = join(folder, "stories.gguf");
    const flags = [
      "--checkpoint",
      sharedModelPaths.stories260K,
      "--tokenizer",
      sharedModelPaths.tokenizer,
      "--out",
      out,
    ];
    expect((await cli("import-llama2c", ...flags)).code).toBe(0);
    const first = readFileSync(out);
    const again = await cli("import-llama2c", ...flags);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already exists; pass --force");
    expect((await cli("import-llama2c", ...flags, "--force")).code).toBe(0);
    expect(readFileSync(out).equals(first)).toBe(true);
  });

  it("reports a truncated checkpoint in one line and leaves no output", async () => {
    const folder = temporary();
    const broken = join(folder, "broken.bin");
    writeFileSync(broken, readFileSync(sharedModelPaths.stories260K).subarray(0, 5000));
    const result = await cli(
      "import-llama2c",
      "--checkpoint",
      broken,
      "--tokenizer",
      sharedModelPaths.tokenizer,
      "--out",
      join(folder, "x.gguf"),
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("truncated");
    expect(readdirSync(folder)).toEqual(["broken.bin"]);
  });
});

describe("self-extend generate", () => {
  it("uses the demo model when no --model is given, and reads a pass key 4x past its trained context", async () => {
    const filler =
      "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
    const prompt = `${filler.repeat(12)}The pass key is 71432. Remember it. 71432 is the pass key. ${filler.repeat(12)}What is the pass key? The pass key is`;
    const { code, stdout, stderr } = await cli("generate", "--prompt", prompt, "--max-tokens", "8", "--json");
    expect(code).toBe(0);
    expect(stderr).toContain("trained context 256");
    expect(stderr).toMatch(/planned G = \d+/);
    expect(JSON.parse(stdout).text).toContain("71432");
  });

  it("greedy-decodes stories260K's published sample from the llama2.c files (--json)", async () => {
    const { code, stdout } = await cli(
      "generate",
      ...stories,
      "--prompt",
      "Once upon a time",
      "--max-tokens",
      "40",
      "--json",
    );
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(Object.keys(result)).toEqual(["tokens", "text"]);
    expect(`Once upon a time${result.text}`.startsWith(published)).toBe(true);
  });

  it("streams the same text as --json gives", async () => {
    const streamed = await cli("generate", ...stories, "--prompt", "Once upon a time", "--max-tokens", "40");
    const json = JSON.parse(
      (await cli("generate", ...stories, "--prompt", "Once upon a time", "--max-tokens", "40", "--json"))
        .stdout,
    );
    expect(streamed.stdout).toBe(`${json.text}\n`);
  });

  it.each([
    [["--prompt", "x", "--group", "3", "--window", "4"], "neighborWindow = 4 is invalid"],
    [["--prompt", "x", "--group", "4"], "--group and --window go together"],
    [["--prompt", "x", "--no-extend", "--group", "4", "--window", "8"], "--no-extend cannot be combined"],
    [["--max-tokens", "4"], "give --prompt"],
    [["--prompt", "x", "--backend", "nope"], 'unknown --backend "nope"'],
    [["--prompt", "x", "--model", "/nonexistent/model.gguf"], "does not exist"],
    [["--prompt", "x", "--group", "2", "--window", "256", "--max-tokens", "800"], "(L - W) * G + W = 768"],
  ])("%j fails with one clear line", async (flags, message) => {
    const result = await cli("generate", ...stories, ...flags);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n").at(-1)).toContain(message);
  });
});

describe("self-extend logits", () => {
  const temporary = useTemporaryFolder();

  it("writes float32 [tokens, vocab] logits equal to the reference session's", async () => {
    const folder = temporary();
    const tokens = [1, ...Array.from({ length: 700 }, (_, index) => 300 + ((index * 7) % 200))];
    writeFileSync(join(folder, "tokens.json"), JSON.stringify(tokens));
    const out = join(folder, "logits.npy");
    const result = await cli(
      "logits",
      ...stories,
      "--tokens-file",
      join(folder, "tokens.json"),
      "--group",
      "4",
      "--window",
      "128",
      "--out",
      out,
    );
    expect(result.code).toBe(0);
    const bytes = readFileSync(out);
    expect(bytes.subarray(0, 6).toString("latin1")).toBe("\u0093NUMPY");
    const headerLength = bytes.readUInt16LE(8);
    const header = bytes.subarray(10, 10 + headerLength).toString("latin1");
    expect(header).toContain("'descr': '<f4'");
    expect(header).toContain(`'shape': (${tokens.length}, 512)`);
    expect((10 + headerLength) % 64).toBe(0);
    const data = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + bytes.length),
    );

    const model = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
    const session = await model.createSession({
      selfExtend: { groupSize: 4, neighborWindow: 128 },
      contextSize: tokens.length,
    });
    const expected = await session.evaluate(tokens, { logits: "all" });
    expect(Array.from(data)).toEqual(Array.from(expected.logits));
  });

  it("leaves no file behind when the sequence is too long for the settings", async () => {
    const folder = temporary();
    writeFileSync(join(folder, "tokens.json"), JSON.stringify(Array.from({ length: 900 }, () => 5)));
    const out = join(folder, "logits.npy");
    const result = await cli(
      "logits",
      ...stories,
      "--tokens-file",
      join(folder, "tokens.json"),
      "--group",
      "2",
      "--window",
      "256",
      "--out",
      out,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("(L - W) * G + W = 768");
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(folder)).toEqual(["tokens.json"]);
  });

  it("rejects a tokens file that is not an array of ids", async () => {
    const folder = temporary();
    writeFileSync(join(folder, "tokens.json"), '{"tokens": 3}');
    const result = await cli(
      "logits",
      ...stories,
      "--tokens-file",
      join(folder, "tokens.json"),
      "--out",
      join(folder, "x.npy"),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("non-empty JSON array of token ids");
  });
});
