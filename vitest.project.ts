import { defineProject } from "vitest/config";

/**
 * Every package's vitest project: tests import workspace packages through the `source` export
 * condition, so they run against src/ without a build.
 */
export function defineWorkspaceProject(name: string, options: { testTimeout?: number } = {}) {
  return defineProject({
    resolve: { conditions: ["source"] },
    ssr: { resolve: { conditions: ["source"] } },
    test: {
      name,
      include: ["test/**/*.test.ts"],
      // Generous: model tests share two cores with each other in CI.
      testTimeout: options.testTimeout ?? 120_000,
    },
  });
}
