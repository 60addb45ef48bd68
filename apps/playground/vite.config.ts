import { defaultClientConditions, defineConfig } from "vite";

export default defineConfig({
  // Relative asset URLs: the built folder works from any path of a static host.
  base: "./",
  // Workspace packages from their TypeScript sources (their `source` export), as the tests use
  // them: the page needs no prior package build and the dev server reloads on source edits.
  resolve: { conditions: ["source", ...defaultClientConditions] },
  // The worker imports the adapter, which splits into chunks; only ES workers can share them.
  worker: { format: "es" },
  build: {
    target: "es2022",
    // The demo model (10 MB) is an asset, never inlined.
    assetsInlineLimit: 0,
  },
});
