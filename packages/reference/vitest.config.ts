import { defineProject } from "vitest/config";

export default defineProject({
  // Resolve workspace packages to their TypeScript sources (the "source" export condition), so
  // the tests need no build of @self-extend/core or @self-extend/models.
  resolve: { conditions: ["source", "module", "node", "development|production"] },
  ssr: { resolve: { conditions: ["source", "module", "node", "development|production"] } },
  test: {
    name: "reference",
    include: ["test/**/*.test.ts"],
  },
});
