export {
  createReportWriter,
  type EvaluationReport,
  type ReportModel,
  type ReportWriter,
} from "./evaluation-report.js";
export {
  type AttentionMethod,
  type EvaluationRun,
  type PlanRunsOptions,
  planEvaluationRuns,
  runLabel,
} from "./evaluation-runs.js";
export {
  compareGreedyRuns,
  type GreedyCandidate,
  type GreedyComparison,
  type GreedyStep,
  type LongGreedyArguments,
  type LongGreedyMainOptions,
  type LongGreedyOptions,
  type LongGreedyRun,
  type LongGreedyScriptOptions,
  longGreedyPrompt,
  longGreedyUsage,
  parseLongGreedyArguments,
  runLongGreedy,
  runLongGreedyMain,
  runLongGreedyScript,
  topCandidates,
} from "./long-greedy.js";
export {
  defaultAnswerTokens,
  evaluatePasskey,
  type PasskeyCell,
  type PasskeyEvaluationOptions,
  type PasskeyEvaluationProgress,
  type PasskeyTrial,
} from "./passkey-evaluation.js";
export { type PasskeyHeatmapOptions, renderPasskeyHeatmap } from "./passkey-heatmap.js";
export {
  buildPasskeyPrompt,
  defaultPasskeyFiller,
  defaultPasskeyIntroduction,
  defaultPasskeyQuestion,
  type PasskeyPrompt,
  type PasskeyPromptOptions,
  type PasskeyTokenizer,
  passkeyKeys,
  passkeyLine,
} from "./passkey-prompt.js";
export {
  commonWindowMultiple,
  evaluatePerplexity,
  type PerplexityBucket,
  type PerplexityCell,
  type PerplexityEvaluationOptions,
  type PerplexityEvaluationProgress,
  scoredTokenCount,
  trainedContextBuckets,
} from "./perplexity-evaluation.js";
export { type PerplexityPlotOptions, renderPerplexityPlot } from "./perplexity-plot.js";
export { sha256OfFile, writeFileAtomically, writeJsonFileAtomically } from "./result-file.js";
export {
  parseScaleBenchmarkArguments,
  runScaleBenchmark,
  type ScaleBenchmarkArguments,
  type ScaleBenchmarkOptions,
  scaleBenchmarkUsage,
} from "./scale-benchmark.js";
export { runScriptMain } from "./script-main.js";
export {
  type DecodeStepMilliseconds,
  deterministicPromptTokens,
  runSpeedBenchmark,
  type SpeedBenchmarkOptions,
  type SpeedBenchmarkRow,
  type SpeedMeasurement,
  speedBenchmarkHeader,
  speedBenchmarkLine,
} from "./speed-benchmark.js";
export {
  runOfSpecRow,
  type SpecPerplexityRow,
  stories260KSpecScoredTokens,
  stories260KSpecTable,
} from "./stories260k-table.js";
