/** What the page and the inference worker say to each other (structured-clone data only). */
import type { SelfExtendConfig } from "@self-extend/core";

export type ModelChoice =
  | { readonly kind: "url"; readonly url: string }
  | { readonly kind: "bytes"; readonly name: string; readonly bytes: ArrayBuffer };

export type PromptChoice =
  | { readonly kind: "passkey"; readonly length: number; readonly key: string; readonly depth: number }
  | { readonly kind: "text"; readonly text: string };

export interface RunRequest {
  readonly type: "run";
  readonly model: ModelChoice;
  readonly prompt: PromptChoice;
  readonly maxTokens: number;
  /** Also return every prompt position's logits, for the loss-by-position curve. */
  readonly lossCurve: boolean;
}

export type PageMessage = { readonly type: "check" } | RunRequest;

export type Method = "self-extend" | "plain";

export interface PlanSummary {
  readonly trainedContext: number;
  readonly promptTokens: number;
  readonly contextSize: number;
  readonly selfExtend: SelfExtendConfig;
  readonly largestUsableContext: number;
  readonly reason: string;
}

export type WorkerMessage =
  | { readonly type: "available"; readonly adapter: string }
  | { readonly type: "unavailable"; readonly reason: string }
  | { readonly type: "plan"; readonly plan: PlanSummary }
  | { readonly type: "loss"; readonly method: Method; readonly losses: Float32Array }
  | {
      readonly type: "tokens";
      readonly method: Method;
      readonly text: string;
      readonly generated: number;
      readonly prefillTokensPerSecond: number;
      readonly decodeTokensPerSecond: number;
    }
  | { readonly type: "finished" }
  | { readonly type: "failed"; readonly message: string };
