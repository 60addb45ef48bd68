/** Slow (minutes): the spec's perplexity table, the 2048-token Self-Extend rows not in the other file. */
import { describe } from "vitest";
import { checkPerplexityRows } from "./perplexity-table.js";
import { spec260KTable } from "./stories260K-perplexity.js";

describe("stories260K perplexity table (2048 Self-Extend rows)", () => {
  checkPerplexityRows([spec260KTable[4], spec260KTable[5], spec260KTable[7]]);
});
