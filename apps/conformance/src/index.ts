export { type ConformanceAppOptions, runConformanceApp } from "./conformance-app.js";
export { renderHtmlReport, writeHtmlReport } from "./html-report.js";
export { formatMatrix } from "./matrix.js";
export { defaultSharedFolder } from "./repository-paths.js";
