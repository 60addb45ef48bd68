import { defaultClientConditions, defineConfig } from "vite";

/**
 * Modules @self-extend/webgpu imports only in Node, through variable specifiers that esbuild
 * leaves alone but Vite 8's bundler (rolldown) folds into literal imports and bundles. Kept
 * external they stay runtime `import()` calls the page never makes (it has navigator.gpu and
 * passes { url } or { bytes }); test/bundle.test.ts checks no Node-only code gets in.
 */
const nodeOnlyImports = ["webgpu", "@self-extend/models/node", "node:fs"];

export default defineConfig({
  // Relative asset URLs: the built folder works from any path of a static host.
  base: "./",
  // Workspace packages from their TypeScript sources (their `source` export), as the tests use
  // them: the page needs no prior package build and the dev server reloads on source edits.
  resolve: { conditions: ["source", ...defaultClientConditions] },
  // The worker imports the adapter, which splits into chunks; only ES workers can share them.
  worker: { format: "es", rolldownOptions: { external: nodeOnlyImports } },
  build: {
    target: "es2022",
    // The demo model (10 MB) is an asset, never inlined.
    assetsInlineLimit: 0,
    rolldownOptions: { external: nodeOnlyImports },
  },
});
