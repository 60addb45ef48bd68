import { join } from "node:path";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

async function cli(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

describe("self-extend conformance", () => {
  const temporary = useTemporaryFolder();

  it("runs the suite on a user's own model with lengths from its trained context (--model, --json)", async () => {
    const folder = temporary();
    const path = join(folder, "mine.gguf");
    writeLlamaGguf(path, generateTinyModel({ ...tinyModelSpec("llama-h16-gqa2"), trainedContext: 96 }, 7));
    const { code, stdout } = await cli(
      "conformance",
      "--backend",
      "reference",
      "--backend",
      "onnxruntime",
      "--model",
      path,
      "--case",
      "logits-2x",
      "--case",
      "greedy-2x",
      "--cache",
      folder,
      "--json",
    );
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.specVersion).toBe("v1");
    expect(report.summary).toMatchObject({ failed: 0, notAvailable: 0 });
    const models = new Set(report.results.map((result: { model: string }) => result.model));
    expect([...models]).toEqual(["user"]);
    // Lengths follow the model's trained context of 96: the planner chose settings for 2 x 96.
    const logits = report.results.find((result: { case: string }) => result.case === "logits-2x@user");
    expect(logits.selfExtend.groupSize).toBeGreaterThan(1);
    expect(logits.status).toBe("pass");
  });

  it("rejects an unknown backend with one line", async () => {
    const { code, stderr } = await cli("conformance", "--backend", "tpu");
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain('unknown backend "tpu"');
  });
});
