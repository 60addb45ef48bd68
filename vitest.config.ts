import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Each package keeps its own vitest config; one run from the root gives one closing line.
    projects: ["packages/*/vitest.config.ts", "apps/*/vitest.config.ts", "tools/*/vitest.config.ts"],
    // Both cores: the long model tests (perplexity tables, every adapter) are CPU-bound, one per file.
    maxWorkers: 2,
    reporters: ["default", "./tools/vitest-reporter/closing-line-reporter.ts"],
  },
});
