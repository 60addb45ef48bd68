/**
 * What an adapter declares about itself for the conformance suite, exported by the adapter package
 * as `conformanceDeclaration` beside its factory: its tolerances and skips (files in the suite's
 * schemas) and its extra runs in other modes.
 */
import { fileURLToPath } from "node:url";
import { readValidatedJson } from "./data-files.js";
import type { BackendUnderTest } from "./run-conformance.js";
import type { SkipEntry } from "./skip-list.js";
import type { ToleranceTable } from "./tolerances.js";

/** A run of the same backend in another mode, shown as its own column. */
export interface ConformanceVariant {
  readonly label: string;
  readonly sessionOptions: NonNullable<BackendUnderTest["sessionOptions"]>;
  /** Measured and reported, not counted (see BackendUnderTest.informational). */
  readonly informational?: BackendUnderTest["informational"];
}

/** What an adapter package exports as `conformanceDeclaration`. */
export interface ConformanceDeclaration {
  /** Its tolerance table, in schema/tolerances.schema.json, merged over the suite's. */
  readonly tolerancesPath?: string | URL;
  /** Its skip list, in schema/skips.schema.json: models or cases it cannot run, each with its reason. */
  readonly skipsPath?: string | URL;
  readonly variants?: readonly ConformanceVariant[];
}

/** The adapter's declared tolerances and skips, read and checked against the suite's schemas. */
export function readDeclaration(declaration: ConformanceDeclaration): {
  tolerances?: ToleranceTable;
  skips?: readonly SkipEntry[];
} {
  const pathOf = (location: string | URL) => (location instanceof URL ? fileURLToPath(location) : location);
  return {
    ...(declaration.tolerancesPath === undefined
      ? {}
      : {
          tolerances: readValidatedJson<ToleranceTable>(
            pathOf(declaration.tolerancesPath),
            "tolerances.schema.json",
          ),
        }),
    ...(declaration.skipsPath === undefined
      ? {}
      : {
          skips: readValidatedJson<{ skips: SkipEntry[] }>(pathOf(declaration.skipsPath), "skips.schema.json")
            .skips,
        }),
  };
}
