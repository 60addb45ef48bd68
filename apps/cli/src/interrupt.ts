/**
 * An AbortSignal that fires on Ctrl-C (SIGINT) or SIGTERM, so long work stops between steps and
 * keeps what it already finished instead of dying mid-write. A second Ctrl-C exits at once.
 */
export function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(Object.assign(new Error("interrupted"), { name: "AbortError" }));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return controller.signal;
}
