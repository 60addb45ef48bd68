import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "golden-files",
    include: ["test/**/*.test.ts"],
  },
});
