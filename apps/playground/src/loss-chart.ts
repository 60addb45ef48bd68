/** The loss-by-position curve: one line per method, the trained context marked. */
import type { Method } from "./messages.js";

export const methodColors: Record<Method, string> = { "self-extend": "#1a73e8", plain: "#e8710a" };
const smoothing = 16;

function movingAverage(values: Float32Array): Float32Array {
  const averaged = new Float32Array(values.length);
  let sum = 0;
  for (let index = 0; index < values.length; index++) {
    sum += values[index];
    if (index >= smoothing) sum -= values[index - smoothing];
    averaged[index] = sum / Math.min(index + 1, smoothing);
  }
  return averaged;
}

export function drawLossChart(
  canvas: HTMLCanvasElement,
  losses: ReadonlyMap<Method, Float32Array>,
  trainedContext: number | undefined,
): void {
  const context = canvas.getContext("2d");
  if (context === null) return;
  const { width, height } = canvas;
  const margin = { left: 36, right: 8, top: 8, bottom: 22 };
  context.clearRect(0, 0, width, height);
  const curves = [...losses].map(([method, values]) => [method, movingAverage(values)] as const);
  if (curves.length === 0) return;
  const positions = Math.max(...curves.map(([, values]) => values.length));
  const top = Math.max(1, ...curves.flatMap(([, values]) => [...values]));
  const x = (position: number) =>
    margin.left + (position / Math.max(1, positions - 1)) * (width - margin.left - margin.right);
  const y = (loss: number) => height - margin.bottom - (loss / top) * (height - margin.top - margin.bottom);
  context.strokeStyle = "#99a";
  context.fillStyle = "#556";
  context.font = "11px system-ui, sans-serif";
  context.strokeRect(
    margin.left,
    margin.top,
    width - margin.left - margin.right,
    height - margin.top - margin.bottom,
  );
  context.fillText(top.toFixed(1), 2, margin.top + 8);
  context.fillText("0", 2, height - margin.bottom);
  context.fillText(`position (0 .. ${positions})`, margin.left, height - 6);
  if (trainedContext !== undefined && trainedContext < positions) {
    context.setLineDash([4, 4]);
    context.beginPath();
    context.moveTo(x(trainedContext), margin.top);
    context.lineTo(x(trainedContext), height - margin.bottom);
    context.stroke();
    context.setLineDash([]);
    context.fillText(`L = ${trainedContext}`, x(trainedContext) + 4, margin.top + 10);
  }
  curves.forEach(([method, values], index) => {
    context.strokeStyle = methodColors[method];
    context.beginPath();
    values.forEach((loss, position) => {
      if (position === 0) context.moveTo(x(position), y(loss));
      else context.lineTo(x(position), y(loss));
    });
    context.stroke();
    context.fillStyle = methodColors[method];
    context.fillText(method, width - margin.right - 80, margin.top + 14 + 14 * index);
  });
}
