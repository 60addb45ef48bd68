/**
 * Perplexity against position in the window, one line per run, as an SVG that reads on its own:
 * title with model and token count, a dashed marker at the trained context, and a legend with
 * each run's overall perplexity and its perplexity past the trained context.
 */
import type { PerplexityCell } from "./perplexity-evaluation.js";
import { coordinate, escapeXml, lineColors, niceTicks, svgDocument } from "./svg-plot.js";

export interface PerplexityPlotOptions {
  readonly title?: string;
  /** A second title line, e.g. model and token count. */
  readonly subtitle?: string;
  readonly trainedContext: number;
  /**
   * Positions per plotted point: adjacent curve buckets are averaged up to this width, so lines
   * from few windows are not dominated by noise. Default: the longest length / 16.
   */
  readonly pointWidth?: number;
}

/** Averages runs of `factor` adjacent buckets; the data stays exact in the results file. */
function rebin(losses: readonly number[], factor: number): number[] {
  const merged: number[] = [];
  for (let start = 0; start < losses.length; start += factor) {
    const group = losses.slice(start, start + factor);
    merged.push(group.reduce((sum, loss) => sum + loss, 0) / group.length);
  }
  return merged;
}

export function renderPerplexityPlot(
  cells: readonly PerplexityCell[],
  options: PerplexityPlotOptions,
): string {
  const width = 900;
  const legendRowHeight = 16;
  const plot = { left: 64, top: 58, width: 560, height: 320 };
  const height = Math.max(plot.top + plot.height + 50, plot.top + 20 + cells.length * legendRowHeight * 2);
  const title = options.title ?? "Perplexity against position in the window";
  const body: string[] = [
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  if (options.subtitle) {
    body.push(
      `<text x="${width / 2}" y="40" text-anchor="middle" fill="#444">${escapeXml(options.subtitle)}</text>`,
    );
  }
  if (cells.length === 0) {
    body.push(
      `<text x="${width / 2}" y="${plot.top + plot.height / 2}" text-anchor="middle">no finished runs yet</text>`,
    );
    return svgDocument(width, height, title, body);
  }

  const longest = Math.max(...cells.map((cell) => cell.length), options.trainedContext);
  const pointWidth = options.pointWidth ?? longest / 16;
  const curves = cells.map((cell) => {
    const factor = Math.max(1, Math.round(pointWidth / cell.curve.bucketWidth));
    return {
      width: factor * cell.curve.bucketWidth,
      losses: rebin(cell.curve.meanNegativeLogLikelihood, factor),
    };
  });
  // The first positions have almost no context and a huge loss; scale the axis to the rest.
  const values = curves.flatMap((curve, index) =>
    curve.losses
      .map((loss, bucket) => ({ start: bucket * curve.width, perplexity: Math.exp(loss) }))
      .filter(
        (point) => point.start >= Math.min(64, cells[index].length / 4) && Number.isFinite(point.perplexity),
      )
      .map((point) => point.perplexity),
  );
  const sorted = values.length > 0 ? values.sort((a, b) => a - b) : [1, 2];
  const yTicks = niceTicks(sorted[0] * 0.95, sorted[Math.floor(sorted.length * 0.995)] * 1.05, 6);
  const [yLow, yHigh] = [yTicks[0], yTicks[yTicks.length - 1]];
  const xOf = (position: number) => plot.left + (position / longest) * plot.width;
  const yOf = (perplexity: number) =>
    plot.top + plot.height - ((perplexity - yLow) / (yHigh - yLow)) * plot.height;

  body.push(
    `<defs><clipPath id="plot-area"><rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}"/></clipPath></defs>`,
    `<g id="axes" stroke="#888" fill="none">`,
    `<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}"/>`,
    "</g>",
  );
  for (const tick of yTicks) {
    const y = coordinate(yOf(tick));
    body.push(
      `<line x1="${plot.left}" x2="${plot.left + plot.width}" y1="${y}" y2="${y}" stroke="#eee"/>`,
      `<text x="${plot.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${coordinate(tick)}</text>`,
    );
  }
  for (const tick of niceTicks(0, longest, 8).filter((value) => value <= longest)) {
    const x = coordinate(xOf(tick));
    body.push(
      `<line x1="${x}" x2="${x}" y1="${plot.top + plot.height}" y2="${plot.top + plot.height + 4}" stroke="#888"/>`,
      `<text x="${x}" y="${plot.top + plot.height + 16}" text-anchor="middle">${tick}</text>`,
    );
  }
  body.push(
    `<text x="${plot.left + plot.width / 2}" y="${plot.top + plot.height + 36}" text-anchor="middle">position in the window (tokens of context)</text>`,
    `<text transform="translate(18 ${plot.top + plot.height / 2}) rotate(-90)" text-anchor="middle">perplexity (mean over ${curves[0].width} positions)</text>`,
  );
  const trainedX = coordinate(xOf(options.trainedContext));
  body.push(
    `<line id="trained-context" x1="${trainedX}" x2="${trainedX}" y1="${plot.top}" y2="${plot.top + plot.height}" stroke="#555" stroke-dasharray="4 4"/>`,
    `<text x="${Number(trainedX) + 4}" y="${plot.top + 14}" fill="#555">trained context L = ${options.trainedContext}</text>`,
  );

  body.push(`<g id="runs" clip-path="url(#plot-area)" fill="none" stroke-width="1.6">`);
  const legend: string[] = [];
  const legendX = plot.left + plot.width + 16;
  for (const [index, cell] of cells.entries()) {
    const color = lineColors[index % lineColors.length];
    const dash = cell.method === "plain" ? ` stroke-dasharray="6 3"` : "";
    const points = curves[index].losses
      .map((loss, bucket) => {
        const middle = Math.min(cell.length, (bucket + 0.5) * curves[index].width);
        return `${coordinate(xOf(middle))},${coordinate(yOf(Math.exp(loss)))}`;
      })
      .join(" ");
    const name = `${cell.length} ${cell.label}`;
    body.push(`<polyline data-run="${escapeXml(name)}" stroke="${color}"${dash} points="${points}"/>`);
    const far = cell.buckets.filter((bucket) => bucket.start >= options.trainedContext).at(-1);
    const y = plot.top + 8 + index * legendRowHeight * 2;
    legend.push(
      `<line x1="${legendX}" x2="${legendX + 22}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${legendX + 28}" y="${y}" dominant-baseline="middle">${escapeXml(name)}</text>`,
      `<text x="${legendX + 28}" y="${y + legendRowHeight - 2}" dominant-baseline="middle" fill="#444">PPL ${cell.perplexity.toFixed(3)}${
        far ? `; ${far.start}-${far.end - 1}: ${far.perplexity.toFixed(3)}` : ""
      }</text>`,
    );
  }
  body.push("</g>", `<g id="legend" font-size="11">`, ...legend, "</g>");
  return svgDocument(width, height, title, body);
}
