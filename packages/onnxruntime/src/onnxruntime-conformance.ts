/**
 * What the conformance suite (@self-extend/conformance) needs to know about this adapter: its
 * tolerances (conformance/tolerances.json, in the suite's schema).
 */
export const conformanceDeclaration = {
  tolerancesPath: new URL("../conformance/tolerances.json", import.meta.url),
};
