/**
 * Child process for the large-file tests: parses the head of one GGUF file and prints, as JSON, the
 * error message (if any), how long readGguf took and the peak memory of the process, so the
 * parent measures this parse alone and not its own heap.
 */
import { readGguf } from "../src/gguf-file.js";

const path = process.argv[2];
if (path === undefined) throw new Error("usage: read-gguf-head.ts <file.gguf>");
const residentBefore = process.memoryUsage().rss;
const started = performance.now();
let error: { name: string; message: string } | undefined;
let tensorBytes = 0;
try {
  const gguf = readGguf(path);
  tensorBytes = gguf.tensors.reduce((sum, tensor) => sum + tensor.byteSize, 0);
  gguf.close();
} catch (caught) {
  error = { name: (caught as Error).name, message: (caught as Error).message };
}
const milliseconds = performance.now() - started;
process.stdout.write(
  JSON.stringify({
    error,
    tensorBytes,
    milliseconds,
    residentBefore,
    peakResident: process.resourceUsage().maxRSS * 1024,
  }),
);
