/**
 * One ONNX Runtime InferenceSession per graph file, created on first use and shared by every
 * session of a model that runs that graph (ONNX Runtime sessions are safe to run concurrently;
 * each of our sessions owns its KV cache). Both our own exports and rewritten user exports open
 * their graphs through it.
 */
import type { InferenceSession } from "onnxruntime-node";
import type { OnnxRuntime } from "./onnxruntime-loader.js";

export class InferenceSessionCache {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();

  /** `threads`: ONNX Runtime intra-op threads per run; undefined leaves ONNX Runtime's own choice. */
  constructor(private readonly threads: number | undefined) {}

  /**
   * The session of the graph at `graphPath`. A creation that fails is forgotten, and `onFailure`
   * called, so the next call tries again (the file may have been replaced meanwhile).
   */
  open(runtime: OnnxRuntime, graphPath: string, onFailure?: () => void): Promise<InferenceSession> {
    const known = this.sessions.get(graphPath);
    if (known !== undefined) return known;
    const threads = this.threads;
    const created = runtime.InferenceSession.create(graphPath, {
      graphOptimizationLevel: "all",
      ...(threads === undefined ? {} : { intraOpNumThreads: threads, interOpNumThreads: 1 }),
    });
    created.catch(() => {
      this.sessions.delete(graphPath);
      onFailure?.();
    });
    this.sessions.set(graphPath, created);
    return created;
  }

  /** Releases every session and forgets them. */
  async releaseAll(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const session of sessions) {
      try {
        await (await session).release();
      } catch {
        // A session that failed to load has nothing to release.
      }
    }
  }
}
