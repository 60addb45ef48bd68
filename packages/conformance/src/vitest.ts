/**
 * `@self-extend/conformance/vitest`: the whole suite as vitest tests, one per case, for an adapter's
 * own test folder:
 *
 *     describeConformance("my-runtime", () => createMyBackend());
 */
import type { SelfExtendBackendV1 } from "@self-extend/core";
import { describe, expect, it } from "vitest";
import { loadConformanceCases } from "./conformance-case.js";
import { type ConformanceOptions, runConformance } from "./run-conformance.js";
import type { ToleranceTable } from "./tolerances.js";

export function describeConformance(
  name: string,
  createBackend: () => SelfExtendBackendV1 | Promise<SelfExtendBackendV1>,
  options: ConformanceOptions & { adapterTolerances?: ToleranceTable; timeout?: number } = {},
): void {
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
            cases: [testCase],
            crossCompare: false,
          });
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
