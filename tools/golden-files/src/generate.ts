/**
 * Writes packages/core/golden/*.json. Run `pnpm golden` after changing the grids; the freshness
 * test fails while the committed files differ from what this would write.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAttentionCases, buildPositionMaps } from "./golden-cases.js";
import { serializeGolden } from "./serialize.js";

const goldenFolder = join(dirname(fileURLToPath(import.meta.url)), "../../../packages/core/golden");
mkdirSync(goldenFolder, { recursive: true });
for (const [name, content] of [
  ["position-maps.json", buildPositionMaps()],
  ["attention-cases.json", buildAttentionCases()],
] as const) {
  const path = join(goldenFolder, name);
  writeFileSync(`${path}.tmp`, serializeGolden(content));
  renameSync(`${path}.tmp`, path);
  console.log(`wrote ${path}`);
}
