import { createRequire } from "node:module";

export interface GoldenPositionMap {
  readonly group: number;
  readonly window: number;
  readonly length: number;
  readonly map: readonly (readonly number[])[];
}

/** The spec's golden position maps, shipped with @self-extend/core. */
export function loadGoldenPositionMaps(): GoldenPositionMap[] {
  const require = createRequire(import.meta.url);
  const path = require.resolve("@self-extend/core/golden/position-maps.json");
  return (require(path) as { cases: GoldenPositionMap[] }).cases;
}
