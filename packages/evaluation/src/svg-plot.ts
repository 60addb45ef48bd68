/** Small SVG building blocks shared by the plots: escaping, number formatting, axis ticks, colors. */

export function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/** A number short enough for an attribute: at most 2 decimals, no trailing zeros. */
export function coordinate(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** About `count` round tick values from at or below `low` to at or above `high`. */
export function niceTicks(low: number, high: number, count = 6): number[] {
  if (!(high > low)) return [low];
  const rough = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step =
    [1, 2, 2.5, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rough) ?? rough;
  const ticks: number[] = [];
  const last = Math.ceil(high / step - 1e-9) * step;
  for (let value = Math.floor(low / step + 1e-9) * step; value <= last + step * 1e-9; value += step) {
    ticks.push(Math.round(value / step) * step);
  }
  return ticks;
}

/** Distinguishable line colors (Okabe-Ito, readable by most color-blind readers), then repeats. */
export const lineColors = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#F0E442",
];

/** Red (0) through yellow (0.5) to green (1), as in the paper's passkey figures. */
export function accuracyColor(accuracy: number): string {
  const stops: [number, number, number][] = [
    [215, 48, 39],
    [254, 224, 139],
    [26, 152, 80],
  ];
  const scaled = Math.min(1, Math.max(0, accuracy)) * 2;
  const index = Math.min(1, Math.floor(scaled));
  const fraction = scaled - index;
  const [from, to] = [stops[index], stops[index + 1]];
  const channel = (k: number) => Math.round(from[k] + (to[k] - from[k]) * fraction);
  return `rgb(${channel(0)},${channel(1)},${channel(2)})`;
}

export function svgDocument(width: number, height: number, title: string, body: string[]): string {
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}
