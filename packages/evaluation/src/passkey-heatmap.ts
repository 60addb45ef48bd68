/**
 * Passkey accuracy as a heatmap like the paper's figures: prompt length across, key depth down,
 * red (0%) to green (100%), one panel per attention method side by side.
 */
import type { PasskeyCell } from "./passkey-evaluation.js";
import { accuracyColor, coordinate, escapeXml, svgDocument } from "./svg-plot.js";

export interface PasskeyHeatmapOptions {
  readonly title?: string;
  readonly subtitle?: string;
  readonly trainedContext: number;
}

export function renderPasskeyHeatmap(cells: readonly PasskeyCell[], options: PasskeyHeatmapOptions): string {
  const lengths = [...new Set(cells.map((cell) => cell.length))].sort((a, b) => a - b);
  const depths = [...new Set(cells.map((cell) => cell.depth))].sort((a, b) => a - b);
  const methods = (["self-extend", "plain"] as const).filter((method) =>
    cells.some((cell) => cell.method === method),
  );
  const cellWidth = 64;
  const cellHeight = 30;
  const panelGap = 60;
  const left = 70;
  const top = 96;
  const panelWidth = Math.max(1, lengths.length) * cellWidth;
  const width = Math.max(420, left + methods.length * (panelWidth + panelGap) + 20);
  const height = top + Math.max(1, depths.length) * cellHeight + 70;
  const title = options.title ?? "Passkey retrieval accuracy";
  const body: string[] = [
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  if (options.subtitle) {
    body.push(
      `<text x="${width / 2}" y="40" text-anchor="middle" fill="#444">${escapeXml(options.subtitle)}</text>`,
    );
  }
  if (cells.length === 0) {
    body.push(`<text x="${width / 2}" y="${top}" text-anchor="middle">no finished cells yet</text>`);
    return svgDocument(width, height, title, body);
  }
  for (const [panel, method] of methods.entries()) {
    const x0 = left + panel * (panelWidth + panelGap);
    body.push(
      `<g id="panel-${method}">`,
      `<text x="${x0 + panelWidth / 2}" y="60" text-anchor="middle" font-weight="bold">${method === "plain" ? "plain attention" : "Self-Extend"}</text>`,
    );
    for (const [column, length] of lengths.entries()) {
      const x = x0 + column * cellWidth;
      const config = cells.find((cell) => cell.method === method && cell.length === length)?.selfExtend;
      body.push(
        `<text x="${x + cellWidth / 2}" y="${top - 20}" text-anchor="middle"${length > options.trainedContext ? ' font-weight="bold"' : ""}>${length}</text>`,
      );
      if (method === "self-extend" && config) {
        body.push(
          `<text x="${x + cellWidth / 2}" y="${top - 6}" text-anchor="middle" font-size="10" fill="#444">G${config.groupSize} W${config.neighborWindow}</text>`,
        );
      }
      for (const [row, depth] of depths.entries()) {
        const y = top + row * cellHeight;
        const cell = cells.find(
          (candidate) =>
            candidate.method === method && candidate.length === length && candidate.depth === depth,
        );
        if (cell === undefined) {
          body.push(
            `<rect x="${x}" y="${y}" width="${cellWidth}" height="${cellHeight}" fill="#f4f4f4" stroke="#fff"/>`,
          );
          continue;
        }
        body.push(
          `<rect data-length="${length}" data-depth="${depth}" data-accuracy="${coordinate(cell.accuracy)}" x="${x}" y="${y}" width="${cellWidth}" height="${cellHeight}" fill="${accuracyColor(cell.accuracy)}" stroke="#fff"><title>${escapeXml(
            `${cell.label}, length ${length}, depth ${depth}: ${cell.successes}/${cell.trials.length}`,
          )}</title></rect>`,
          `<text x="${x + cellWidth / 2}" y="${y + cellHeight / 2}" text-anchor="middle" dominant-baseline="middle">${Math.round(cell.accuracy * 100)}%</text>`,
        );
      }
    }
    if (panel === 0) {
      for (const [row, depth] of depths.entries()) {
        body.push(
          `<text x="${x0 - 8}" y="${top + row * cellHeight + cellHeight / 2}" text-anchor="end" dominant-baseline="middle">${coordinate(depth)}</text>`,
        );
      }
      body.push(
        `<text transform="translate(16 ${top + (depths.length * cellHeight) / 2}) rotate(-90)" text-anchor="middle">key depth</text>`,
      );
    }
    body.push("</g>");
  }
  const panelsWidth = methods.length * panelWidth + (methods.length - 1) * panelGap;
  body.push(
    `<text x="${left + panelsWidth / 2}" y="${top + depths.length * cellHeight + 22}" text-anchor="middle">prompt length in tokens (bold: past the trained context L = ${options.trainedContext})</text>`,
  );
  return svgDocument(width, height, title, body);
}
