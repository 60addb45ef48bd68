/**
 * `@self-extend/conformance/vitest`: the whole suite as vitest tests, one per case, for an adapter's
 * own test folder:
 *
 *     describeConformance("my-runtime", () => createMyBackend(), { declaration: conformanceDeclaration });
 *
 * A case fails on any failed or not-available row (a runtime missing here is a failure, never a
 * silent pass); skipped rows are the adapter's declared skips, each with its reason; measured-only
 * variants report deviations without failing, unless they throw.
 */
import type { SelfExtendBackendV1 } from "@self-extend/core";
import { describe, expect, it } from "vitest";
import { type ConformanceDeclaration, readDeclaration } from "./adapter-declaration.js";
import { loadConformanceCases } from "./conformance-case.js";
import { type ConformanceOptions, runConformance } from "./run-conformance.js";
import type { SkipEntry } from "./skip-list.js";
import type { ToleranceTable } from "./tolerances.js";

export function describeConformance(
  name: string,
  createBackend: () => SelfExtendBackendV1 | Promise<SelfExtendBackendV1>,
  options: ConformanceOptions & {
    /** The adapter's declaration: its tolerances, skips and variants (other modes). */
    declaration?: ConformanceDeclaration;
    adapterTolerances?: ToleranceTable;
    adapterSkips?: readonly SkipEntry[];
    timeout?: number;
  } = {},
): void {
  const declared = options.declaration === undefined ? {} : readDeclaration(options.declaration);
  const adapterTolerances = options.adapterTolerances ?? declared.tolerances;
  const adapterSkips = options.adapterSkips ?? declared.skips;
  const variants = options.declaration?.variants;
  const cases = (options.cases ?? loadConformanceCases()).filter(
    (testCase) => options.caseNames === undefined || options.caseNames.includes(testCase.name),
  );
  describe(`conformance: ${name}`, () => {
    for (const testCase of cases) {
      it(
        testCase.name,
        async () => {
          const report = await runConformance(createBackend, {
            ...options,
            adapterTolerances,
            adapterSkips,
            variants,
            cases: [testCase],
            crossCompare: false,
          });
          for (const row of report.results) {
            if (row.status === "deviation" || row.status === "skipped")
              console.info(
                `${row.backend} ${row.case}: ${row.status}: ${row.reason ?? ""} (${row.note ?? ""})`,
              );
          }
          const problems = report.results
            .filter((result) => result.status === "fail" || result.status === "not-available")
            .map((result) => `${result.backend} ${result.case}: ${result.status}: ${result.reason}`);
          expect(problems).toEqual([]);
          expect(report.results.length).toBeGreaterThan(0);
        },
        options.timeout ?? 600_000,
      );
    }
  });
}

export { describeSessionBehaviour, type SessionBehaviourOptions } from "./session-behaviour.js";
