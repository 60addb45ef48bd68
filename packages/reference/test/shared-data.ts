import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export { sharedModelPaths } from "@self-extend/test-fixtures";

/** Committed model outputs this package's tests compare against. */
export const fixturesFolder = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
