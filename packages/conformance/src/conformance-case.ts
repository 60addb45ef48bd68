import { join } from "node:path";
import type { SelfExtendConfig } from "@self-extend/core";
import { dataFolder, jsonFilesIn, readValidatedJson } from "./data-files.js";

export type ConformanceTier = "position-map" | "logits" | "greedy";

export interface ConformanceCase {
  readonly name: string;
  readonly description: string;
  readonly tier: ConformanceTier;
  readonly models?: readonly string[];
  readonly promptLength?: number;
  readonly generatedTokens?: number | { readonly atLeast: number; readonly trainedContexts: number };
  readonly selfExtend?: "plan" | "plain" | SelfExtendConfig;
  readonly promptSeed?: number;
  readonly modelSeed?: number;
}

/** The cases shipped with the suite (data/cases/*.json), validated against schema/case.schema.json. */
export function loadConformanceCases(folder = join(dataFolder, "cases")): ConformanceCase[] {
  return jsonFilesIn(folder).map((path) => readValidatedJson<ConformanceCase>(path, "case.schema.json"));
}

/** Tokens to generate for a greedy case on a model with trained context L. */
export function generatedTokenCount(testCase: ConformanceCase, trainedContext: number): number {
  const spec = testCase.generatedTokens;
  if (spec === undefined) return 0;
  if (typeof spec === "number") return spec;
  return Math.max(spec.atLeast, Math.floor(spec.trainedContexts * trainedContext));
}

export function promptTokenCount(testCase: ConformanceCase, trainedContext: number): number {
  return Math.max(1, Math.floor((testCase.promptLength ?? 1) * trainedContext));
}
