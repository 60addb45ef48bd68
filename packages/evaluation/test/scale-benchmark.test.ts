import { readFileSync } from "node:fs";
import { join } from "node:path";
import { planSelfExtend, type SelfExtendBackendV1, type SessionOptionsV1 } from "@self-extend/core";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { parseScaleBenchmarkArguments, runScaleBenchmark } from "../src/index.js";

describe("the scale benchmark both GPU scripts run", () => {
  const temporary = useTemporaryFolder();

  it("parses <folder> [trained context] [multiples] [json out], refusing bad values in one line", () => {
    expect(parseScaleBenchmarkArguments(["/tmp/m"])).toEqual({
      folder: "/tmp/m",
      trainedContext: 4096,
      multiples: [1, 4],
    });
    expect(parseScaleBenchmarkArguments(["/tmp/m", "2048", "1,2,8", "out.json"])).toEqual({
      folder: "/tmp/m",
      trainedContext: 2048,
      multiples: [1, 2, 8],
      jsonPath: "out.json",
    });
    expect(parseScaleBenchmarkArguments(["--repeats", "3", "/tmp/m", "2048", "--decode", "64"])).toEqual({
      folder: "/tmp/m",
      trainedContext: 2048,
      multiples: [1, 4],
      decodeTokens: 64,
      repeats: 3,
    });
    expect(() => parseScaleBenchmarkArguments(["/tmp/m", "--repeats", "0"])).toThrow(
      '--repeats "0" is invalid: must be an integer >= 1',
    );
    expect(() => parseScaleBenchmarkArguments(["/tmp/m", "--decode"])).toThrow(
      '--decode "" is invalid: must be an integer >= 1',
    );
    expect(() => parseScaleBenchmarkArguments([])).toThrow(/^usage: <model folder>/);
    expect(() => parseScaleBenchmarkArguments(["/tmp/m", "4k"])).toThrow(
      'trained context "4k" is invalid: must be an integer >= 2',
    );
    expect(() => parseScaleBenchmarkArguments(["/tmp/m", "4096", "1,x"])).toThrow(
      'multiples "1,x" are invalid: must be positive numbers separated by commas',
    );
  });

  it("runs plain and the planner's Self-Extend per context, printing each row and rewriting the JSON after it", async () => {
    const spec = tinyModelSpec("llama-h8-mha");
    const modelPath = join(temporary(), "model.gguf");
    writeLlamaGguf(modelPath, generateTinyModel(spec, 1));
    const jsonPath = join(temporary(), "scale.json");
    const lines: string[] = [];
    const written: number[] = [];
    const rows = await runScaleBenchmark({
      label: "reference",
      backend: createReferenceBackend(),
      modelPath,
      multiples: [1, 2],
      jsonPath,
      device: { adapter: "test CPU" },
      decodeTokens: 4,
      repeats: 2,
      log: (line) => {
        lines.push(line);
        if (line.startsWith("reference |"))
          written.push(JSON.parse(readFileSync(jsonPath, "utf8")).rows.length);
      },
    });
    expect(rows.map((row) => row.contextSize)).toEqual([spec.trainedContext, 2 * spec.trainedContext]);
    // When a row is printed, the file already holds it (and the rows before it).
    expect(written).toEqual([1, 2]);
    const saved = JSON.parse(readFileSync(jsonPath, "utf8"));
    const plan = planSelfExtend({
      trainedContext: spec.trainedContext,
      targetContext: 2 * spec.trainedContext + 4,
    });
    expect(saved.adapter).toBe("test CPU");
    expect(saved.selfExtend).toEqual(plan.config);
    expect(saved.rows).toHaveLength(2);
    for (const row of saved.rows) {
      expect(row.prefillTimeRatio).toBeCloseTo(
        row.plain.prefillTokensPerSecond / row.selfExtend.prefillTokensPerSecond,
        10,
      );
    }
    expect(lines.filter((line) => line.startsWith("reference |"))).toHaveLength(2);
    expect(lines).toContain(
      `Self-Extend G = ${plan.config.groupSize}, W = ${plan.config.neighborWindow} (the adapter's default mode), 4 decoded tokens, 2 runs side by side`,
    );
  });

  it("gives the Self-Extend session, and only it, the options asked for, and says so in the JSON", async () => {
    const spec = tinyModelSpec("llama-h8-mha");
    const modelPath = join(temporary(), "model.gguf");
    writeLlamaGguf(modelPath, generateTinyModel(spec, 1));
    const jsonPath = join(temporary(), "scale.json");
    const reference = createReferenceBackend();
    const sessions: SessionOptionsV1[] = [];
    // The reference backend, recording what each session was asked for.
    const recording: SelfExtendBackendV1 = {
      ...reference,
      async loadModel(source) {
        const model = await reference.loadModel(source);
        return Object.assign(Object.create(model), {
          createSession(options: SessionOptionsV1) {
            sessions.push(options);
            return model.createSession(options);
          },
        });
      },
    };
    const lines: string[] = [];
    await runScaleBenchmark({
      label: "reference",
      backend: recording,
      modelPath,
      multiples: [1],
      jsonPath,
      device: { adapter: "test CPU" },
      decodeTokens: 2,
      selfExtendSessionOptions: { mode: "exact", cachePrecision: "float64" },
      log: (line) => lines.push(line),
    });
    const plain = sessions.filter((options) => options.selfExtend.groupSize === 1);
    const extended = sessions.filter((options) => options.selfExtend.groupSize > 1);
    expect(plain.length).toBe(1);
    expect(extended.length).toBe(1);
    expect(plain[0]).toEqual({
      selfExtend: { groupSize: 1, neighborWindow: 1 },
      contextSize: spec.trainedContext,
    });
    expect(extended[0]).toMatchObject({
      mode: "exact",
      cachePrecision: "float64",
      contextSize: spec.trainedContext,
    });
    const saved = JSON.parse(readFileSync(jsonPath, "utf8"));
    expect(saved.selfExtendSessionOptions).toEqual({ mode: "exact", cachePrecision: "float64" });
    expect(
      lines.some((line) => line.includes('({"mode":"exact","cachePrecision":"float64"}), 2 decoded tokens')),
    ).toBe(true);
  });
});
