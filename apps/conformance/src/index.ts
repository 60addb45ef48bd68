export {
  findRegisteredBackend,
  loadRegisteredBackend,
  type RegisteredBackend,
  registeredBackends,
} from "./backend-registry.js";
export { type ConformanceAppOptions, runConformanceApp, UnknownBackendError } from "./conformance-app.js";
export { renderHtmlReport, writeHtmlReport } from "./html-report.js";
export { formatMatrix } from "./matrix.js";
export { defaultSharedFolder } from "./repository-paths.js";
