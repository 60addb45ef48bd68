import { defineProject } from "vitest/config";

// "source" points workspace packages (@self-extend/core) at their TypeScript sources, so tests run
// without building them first (the same condition tsconfig's customConditions uses).
const conditions = ["source", "node", "import", "module", "default"];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    name: "models",
    include: ["test/**/*.test.ts"],
  },
});
