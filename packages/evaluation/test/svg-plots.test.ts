import { findAll, parseXml } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import {
  type PasskeyCell,
  type PerplexityCell,
  renderPasskeyHeatmap,
  renderPerplexityPlot,
} from "../src/index.js";
import { niceTicks } from "../src/svg-plot.js";

function perplexityCell(length: number, method: "plain" | "self-extend", offset: number): PerplexityCell {
  const bucketWidth = 32;
  const curve = Array.from({ length: length / bucketWidth }, (_, bucket) => 1.3 + offset + 1 / (bucket + 1));
  return {
    length,
    method,
    selfExtend:
      method === "plain" ? { groupSize: 1, neighborWindow: 1 } : { groupSize: 8, neighborWindow: 256 },
    planned: false,
    largestRelativePosition: method === "plain" ? length - 1 : 510,
    beyondTrainedContext: method === "plain" && length > 512,
    label: method === "plain" ? "plain" : "Self-Extend G=8 W=256",
    perplexity: Math.exp(1.4 + offset),
    meanNegativeLogLikelihood: 1.4 + offset,
    predictionCount: 4096,
    windowCount: 4096 / length,
    buckets: [
      { start: 0, end: 512, perplexity: 3.7, predictionCount: 100 },
      { start: 1024, end: 2048, perplexity: 4.9, predictionCount: 100 },
    ],
    curve: { bucketWidth, meanNegativeLogLikelihood: curve },
    seconds: 1,
  };
}

describe("perplexity plot", () => {
  it("is well-formed SVG with one line per run, a trained-context marker and a legend", () => {
    const cells = [
      perplexityCell(512, "plain", 0),
      perplexityCell(2048, "plain", 0.2),
      perplexityCell(2048, "self-extend", 0),
    ];
    // A label with markup characters must come out escaped, not break the document.
    const svg = renderPerplexityPlot(cells, { trainedContext: 512, subtitle: 'model <"a&b">' });
    const root = parseXml(svg);
    expect(root.name).toBe("svg");
    expect(root.attributes.xmlns).toBe("http://www.w3.org/2000/svg");
    const [, , width, height] = root.attributes.viewBox.split(" ").map(Number);
    const lines = findAll(root, "polyline");
    expect(lines.map((line) => line.attributes["data-run"])).toEqual([
      "512 plain",
      "2048 plain",
      "2048 Self-Extend G=8 W=256",
    ]);
    // 32-position buckets are averaged to points of 2048 / 16 = 128 positions.
    expect(lines[0].attributes.points.split(" ")).toHaveLength(4);
    expect(lines[1].attributes.points.split(" ")).toHaveLength(16);
    for (const line of lines) {
      for (const point of line.attributes.points.split(" ")) {
        const [x, y] = point.split(",").map(Number);
        expect(Number.isFinite(x) && Number.isFinite(y)).toBe(true);
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(width);
      }
    }
    expect(findAll(root, "line").some((line) => line.attributes.id === "trained-context")).toBe(true);
    const texts = findAll(root, "text").map((text) => text.text);
    expect(texts).toContain('model <"a&b">');
    expect(texts.some((text) => text.startsWith("PPL 4.055; 1024-2047: 4.900"))).toBe(true);
    expect(height).toBeGreaterThan(0);
  });

  it("renders an empty plot (before the first run finishes) as valid SVG", () => {
    expect(findAll(parseXml(renderPerplexityPlot([], { trainedContext: 512 })), "polyline")).toHaveLength(0);
  });
});

describe("passkey heatmap", () => {
  it("draws one colored cell per length x depth per method, with the accuracy", () => {
    const cells: PasskeyCell[] = [];
    for (const method of ["self-extend", "plain"] as const) {
      for (const length of [512, 1024]) {
        for (const depth of [0, 0.5, 1]) {
          const successes = method === "plain" && length > 512 ? 0 : depth === 0.5 ? 1 : 2;
          cells.push({
            length,
            method,
            selfExtend:
              method === "plain"
                ? { groupSize: 1, neighborWindow: 1 }
                : { groupSize: 4, neighborWindow: 128 },
            planned: true,
            largestRelativePosition: 0,
            beyondTrainedContext: false,
            label: method,
            depth,
            actualDepth: depth,
            trials: [
              { key: "12345", found: successes > 0, answer: " 12345.", keyStart: 10 },
              { key: "54321", found: successes > 1, answer: " 54321.", keyStart: 10 },
            ],
            successes,
            accuracy: successes / 2,
            seconds: 1,
          });
        }
      }
    }
    const root = parseXml(renderPasskeyHeatmap(cells, { trainedContext: 512 }));
    const squares = findAll(root, "rect").filter((rect) => rect.attributes["data-accuracy"] !== undefined);
    expect(squares).toHaveLength(12);
    const panels = root.children.filter((child) => child.name === "g").map((group) => group.attributes.id);
    expect(panels).toEqual(["panel-self-extend", "panel-plain"]);
    const plainLong = findAll(
      root.children.find((child) => child.attributes.id === "panel-plain")!,
      "rect",
    ).filter((rect) => rect.attributes["data-length"] === "1024");
    expect(plainLong.map((rect) => rect.attributes.fill)).toEqual([
      "rgb(215,48,39)",
      "rgb(215,48,39)",
      "rgb(215,48,39)",
    ]);
    expect(squares.filter((rect) => rect.attributes.fill === "rgb(26,152,80)")).toHaveLength(6);
    expect(findAll(root, "text").map((text) => text.text)).toContain("50%");
  });
});

describe("the XML checker itself", () => {
  it("rejects what is not well-formed", () => {
    expect(() => parseXml("<svg><g></svg>")).toThrow();
    expect(() => parseXml('<svg a="1" a="2"/>')).toThrow(/duplicate/);
    expect(() => parseXml("<svg>a & b</svg>")).toThrow(/entity/);
    expect(() => parseXml("<svg/><svg/>")).toThrow(/second root/);
    expect(() => parseXml('<svg x="1>')).toThrow();
  });
});

describe("axis ticks", () => {
  it("cover the data range with round steps", () => {
    expect(niceTicks(3.3, 6.4, 6)).toEqual([3, 4, 5, 6, 7]);
    expect(niceTicks(0, 2048, 8)).toEqual([0, 500, 1000, 1500, 2000, 2500]);
  });
});
