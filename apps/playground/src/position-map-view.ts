/**
 * The relative-position map of the paper's Figure 3: query rows, key columns, the position the
 * model sees for each pair. Up to `largestGridLength` tokens every cell is drawn with its number;
 * beyond that the canvas is a heatmap where each pixel samples one (query, key) pair.
 */
import { relativePosition, relativePositionMap, type SelfExtendConfig } from "@self-extend/core";

export const largestGridLength = 24;

const maskedColor = "#ffffff";
const untrainedColor = "#d93025";

/** Neighbor pairs in green, grouped pairs in blue, darker for larger positions. */
function cellColor(position: number, isNeighbor: boolean, trainedContext: number): string {
  if (position > trainedContext - 1) return untrainedColor;
  const lightness = 92 - Math.round((50 * position) / Math.max(1, trainedContext - 1));
  return isNeighbor ? `hsl(130 45% ${lightness}%)` : `hsl(215 60% ${lightness}%)`;
}

export function drawPositionMap(
  canvas: HTMLCanvasElement,
  config: SelfExtendConfig,
  length: number,
  trainedContext: number,
): string {
  const context = canvas.getContext("2d");
  if (context === null) return "no 2D canvas";
  const size = canvas.width;
  context.clearRect(0, 0, size, canvas.height);
  let largest = 0;
  if (length <= largestGridLength) {
    const map = relativePositionMap(config, length);
    const cell = size / length;
    context.font = `${Math.max(8, Math.floor(cell * 0.45))}px ui-monospace, monospace`;
    context.textAlign = "center";
    context.textBaseline = "middle";
    for (let query = 0; query < length; query++) {
      for (let key = 0; key < length; key++) {
        const position = map[query * length + key];
        const masked = key > query;
        context.fillStyle = masked
          ? maskedColor
          : cellColor(position, query - key < config.neighborWindow, trainedContext);
        context.fillRect(key * cell, query * cell, cell, cell);
        context.strokeStyle = "#c8ccd8";
        context.strokeRect(key * cell, query * cell, cell, cell);
        if (!masked) {
          largest = Math.max(largest, position);
          context.fillStyle = "#1d2330";
          context.fillText(String(position), (key + 0.5) * cell, (query + 0.5) * cell);
        }
      }
    }
  } else {
    const image = context.createImageData(size, size);
    const probe = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    // Colors as RGBA bytes, cached by CSS string (the heatmap has few distinct shades).
    const rgba = new Map<string, Uint8ClampedArray>();
    const bytesOf = (color: string) => {
      let bytes = rgba.get(color);
      if (bytes === undefined && probe !== null) {
        probe.fillStyle = color;
        probe.fillRect(0, 0, 1, 1);
        bytes = probe.getImageData(0, 0, 1, 1).data;
        rgba.set(color, bytes);
      }
      return bytes ?? new Uint8ClampedArray([0, 0, 0, 255]);
    };
    for (let y = 0; y < size; y++) {
      const query = Math.min(length - 1, Math.floor(((y + 0.5) * length) / size));
      for (let x = 0; x < size; x++) {
        const key = Math.min(length - 1, Math.floor(((x + 0.5) * length) / size));
        let color = maskedColor;
        if (key <= query) {
          const position = relativePosition(query, key, config);
          largest = Math.max(largest, position);
          color = cellColor(position, query - key < config.neighborWindow, trainedContext);
        }
        image.data.set(bytesOf(color), (y * size + x) * 4);
      }
    }
    context.putImageData(image, 0, 0);
  }
  return `${length} x ${length}, G = ${config.groupSize}, W = ${config.neighborWindow}: largest relative position ${largest}${largest > trainedContext - 1 ? ` > L - 1 = ${trainedContext - 1} (red: never seen in training)` : ` <= L - 1 = ${trainedContext - 1}`}${length > largestGridLength ? " (heatmap, one sampled pair per pixel)" : ""}`;
}
