import type { Terminal } from "./terminal.js";

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`
    : `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

/**
 * Progress on stderr with an estimate of the time left. On a terminal the line redraws in place;
 * in logs (CI) a line is printed at most every few seconds so the output stays short.
 */
export function createProgress(terminal: Terminal, label: string, now: () => number = () => Date.now()) {
  const started = now();
  let lastPrinted = 0;
  let drawn = false;
  return {
    update(completed: number, total: number, detail = "") {
      const elapsed = (now() - started) / 1000;
      const remaining =
        completed > 0 ? (elapsed / completed) * (total - completed) : Number.POSITIVE_INFINITY;
      const width = 24;
      const filled = total > 0 ? Math.round((completed / total) * width) : 0;
      const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
      const text = `${label} ${bar} ${completed}/${total} ${formatDuration(elapsed)} elapsed, ~${formatDuration(remaining)} left ${detail}`;
      if (terminal.interactive) {
        terminal.error(`\r\u001b[2K${text.slice(0, (process.stderr.columns ?? 120) - 1)}`);
        drawn = true;
      } else if (completed === total || now() - lastPrinted > 5000) {
        terminal.error(`${text}\n`);
        lastPrinted = now();
      }
    },
    done() {
      if (drawn) terminal.error("\r\u001b[2K");
    },
  };
}
