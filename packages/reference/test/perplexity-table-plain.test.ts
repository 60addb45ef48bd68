/** Slow (minutes): the spec's perplexity table, rows without grouping and the 1024 row. */
import { describe } from "vitest";
import { checkPerplexityRows } from "./perplexity-table.js";
import { spec260KTable } from "./stories260K-perplexity.js";

describe("stories260K perplexity table (plain rows, 1024 Self-Extend, 2048 W=64 G=8)", () => {
  checkPerplexityRows([...spec260KTable.slice(0, 4), spec260KTable[6]]);
});
