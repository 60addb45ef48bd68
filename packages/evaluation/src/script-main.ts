/**
 * The entry of the GPU and benchmark scripts: runs `main`, and turns any error (bad arguments, a
 * missing runtime, an unreadable model) into one line on stderr, `<script>: <message>`, and exit
 * status 2, never a stack trace.
 */
export async function runScriptMain(
  script: string,
  main: () => Promise<void>,
  exit: (code: number) => never = process.exit,
): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`${script}: ${message.split("\n")[0].trim()}`);
    exit(2);
  }
}
