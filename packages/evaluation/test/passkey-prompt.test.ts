import { describe, expect, it } from "vitest";
import {
  buildPasskeyPrompt,
  defaultPasskeyFiller,
  defaultPasskeyIntroduction,
  defaultPasskeyQuestion,
  passkeyKeys,
  passkeyLine,
} from "../src/index.js";
import { stories260KTokenizer } from "./stories260k.js";

describe("passkey prompt", () => {
  const tokenizer = stories260KTokenizer();

  it("is exactly the requested number of tokens, BOS first, question last", () => {
    for (const length of [160, 257, 512, 1000, 2048]) {
      const prompt = buildPasskeyPrompt(tokenizer, { length, depth: 0.5, key: "48213" });
      expect(prompt.tokens).toHaveLength(length);
      expect(prompt.tokens[0]).toBe(tokenizer.vocabulary.bosId);
      const question = tokenizer.encode(defaultPasskeyQuestion, { addBos: false, addEos: false });
      expect(prompt.tokens.slice(-question.length)).toEqual(question);
    }
  });

  it("puts the key line at the requested depth, on a filler-sentence boundary", () => {
    const length = 1024;
    const head = tokenizer.encode(defaultPasskeyIntroduction, { addBos: true, addEos: false }).length;
    const keyTokens = tokenizer.encode(passkeyLine("77777"), { addBos: false, addEos: false });
    const question = tokenizer.encode(defaultPasskeyQuestion, { addBos: false, addEos: false }).length;
    const fillerTokens = length - head - keyTokens.length - question;
    const longestSentence = Math.max(
      ...defaultPasskeyFiller
        .split(/(?<=\.)\s+/)
        .map((sentence) => tokenizer.encode(sentence, { addBos: false }).length),
    );
    for (const depth of [0, 0.1, 0.25, 0.5, 0.75, 1]) {
      const prompt = buildPasskeyPrompt(tokenizer, { length, depth, key: "77777" });
      expect(prompt.tokens.slice(prompt.keyStart, prompt.keyEnd)).toEqual(keyTokens);
      const before = prompt.keyStart - head;
      expect(Math.abs(before - depth * fillerTokens)).toBeLessThanOrEqual(longestSentence / 2 + 1);
      expect(prompt.actualDepth).toBeCloseTo(before / fillerTokens, 12);
      const text = tokenizer.decode(prompt.tokens);
      expect(text).toContain(passkeyLine("77777"));
      expect(text.split("77777")).toHaveLength(3);
    }
    const first = buildPasskeyPrompt(tokenizer, { length, depth: 0, key: "77777" });
    expect(first.keyStart).toBe(head);
    expect(
      tokenizer
        .decode(first.tokens)
        .startsWith(`${defaultPasskeyIntroduction} ${passkeyLine("77777")} The grass is green.`),
    ).toBe(true);
    const last = buildPasskeyPrompt(tokenizer, { length, depth: 1, key: "77777" });
    expect(last.keyEnd).toBe(length - question);
  });

  it("reads as the paper's text: filler sentences repeated in order", () => {
    const prompt = buildPasskeyPrompt(tokenizer, { length: 300, depth: 0.5, key: "10101", introduction: "" });
    const text = tokenizer.decode(prompt.tokens);
    expect(text.startsWith(`${defaultPasskeyFiller} ${defaultPasskeyFiller}`)).toBe(true);
    expect(text.endsWith(defaultPasskeyQuestion)).toBe(true);
    expect(text).not.toContain("There is an important info");
  });

  it("takes another filler and question", () => {
    const prompt = buildPasskeyPrompt(tokenizer, {
      length: 200,
      depth: 0.25,
      key: "55555",
      filler: "Tom has a red ball. The dog runs fast.",
      question: "What is the pass key? It is",
      introduction: "",
    });
    const text = tokenizer.decode(prompt.tokens);
    expect(prompt.tokens).toHaveLength(200);
    expect(text.startsWith("Tom has a red ball. The dog runs fast. Tom has")).toBe(true);
    expect(text.endsWith("What is the pass key? It is")).toBe(true);
  });

  it("refuses a length the fixed parts do not fit in, and a depth outside 0..1", () => {
    expect(() => buildPasskeyPrompt(tokenizer, { length: 40, depth: 0, key: "12345" })).toThrow(/too short/);
    expect(() => buildPasskeyPrompt(tokenizer, { length: 400, depth: 1.5, key: "12345" })).toThrow(/depth/);
  });

  it("draws the same five-digit keys from the same seed", () => {
    expect(passkeyKeys(5, 7)).toEqual(passkeyKeys(5, 7));
    expect(passkeyKeys(5, 7)).not.toEqual(passkeyKeys(5, 8));
    for (const key of passkeyKeys(50, 1)) expect(key).toMatch(/^[1-9]\d{4}$/);
  });
});
