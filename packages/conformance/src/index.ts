export {
  type ConformanceDeclaration,
  type ConformanceVariant,
  readDeclaration,
} from "./adapter-declaration.js";
export {
  type ConformanceCase,
  type ConformanceTier,
  generatedTokenCount,
  loadConformanceCases,
  promptTokenCount,
} from "./conformance-case.js";
export {
  type ConformanceModel,
  defaultCacheFolder,
  expandModelIds,
  type ModelLocations,
  prepareModel,
} from "./conformance-models.js";
export {
  type ConformanceReport,
  type ConformanceResult,
  type ConformanceStatus,
  type ConformanceSummary,
  summarize,
  toJson,
} from "./conformance-result.js";
export { ConformanceDataError, dataFolder, readValidatedJson, schemaFolder } from "./data-files.js";
export { type GoldenPositionMap, loadGoldenPositionMaps } from "./golden-position-maps.js";
export {
  compareLogProbabilities,
  firstDivergence,
  type LogitComparison,
  logSoftmaxRows,
} from "./log-probabilities.js";
export { seededPrompt } from "./prompt.js";
export {
  type BackendUnderTest,
  type ConformanceOptions,
  type ConformanceProgress,
  runConformance,
  runConformanceSuite,
} from "./run-conformance.js";
export { findSkip, loadSkipList, type SkipEntry } from "./skip-list.js";
export {
  concatenateRows,
  type GreedyRun,
  greedyRun,
  largestDifference,
  seededTokens,
} from "./test-helpers.js";
export {
  adapterTolerance,
  loadTolerances,
  mergeTolerances,
  resolveModelTolerance,
  resolveTolerance,
  type Tolerance,
  type ToleranceOverride,
  type ToleranceQuery,
  type ToleranceTable,
} from "./tolerances.js";
