/** Where a command writes. Tests pass their own to capture output without spawning a process. */
export interface Terminal {
  out(text: string): void;
  error(text: string): void;
  /** True when stderr is an interactive terminal (progress bars redraw in place). */
  readonly interactive: boolean;
}

export const processTerminal: Terminal = {
  out: (text) => process.stdout.write(text),
  error: (text) => process.stderr.write(text),
  get interactive() {
    return Boolean(process.stderr.isTTY);
  },
};
