/**
 * Varied texts for tokenizer comparisons, from a seeded generator so every run checks the same
 * strings: hand-picked hard cases, then random mixes of fragments (numbers, whitespace runs,
 * newlines, CJK, emoji, combining marks, lone surrogates, special tokens in text, long words).
 */

const fragments = [
  "Hello",
  " world",
  "The quick brown fox jumps over the lazy dog.",
  "don't",
  "I'M",
  "we'll",
  "they'RE",
  "you've",
  "'s",
  "1",
  "12",
  "123",
  "1234",
  "1234567890",
  "3.14159",
  "-42",
  "1,000,000",
  "0x1F",
  "2026-12-05",
  " ",
  "  ",
  "     ",
  "\t",
  "\t\t ",
  "\n",
  "\n\n",
  "\r\n",
  " \n ",
  "\n   \n",
  "你好世界",
  "日本語のテキストです。",
  "한국어 문장",
  "中文，标点！",
  "👍",
  "👍🏽",
  "👨‍👩‍👧",
  "🇫🇷",
  "🤖🚀",
  "e\u0301",
  "a\u0308o\u0308",
  "x\u0301\u0302\u0323",
  "Ame\u0301lie",
  "नमस्ते",
  "مرحبا بالعالم",
  "Привет, мир",
  "Ελληνικά",
  "\ud800",
  "\udc00x",
  "\ufffd",
  "\u0000",
  "\u00a0",
  "\u200b",
  "Supercalifragilisticexpialidocious",
  "pneumonoultramicroscopicsilicovolcanoconiosis",
  "function add(a, b) { return a + b; }",
  '<div class="x">&amp;</div>',
  "...!!!???",
  "----====",
  "$$$",
  "@user #tag",
  "https://example.com/path?q=1&r=2",
  "ÀÉÎÕÜ àéîõü ß",
  "ﬁ ﬂ",
];

/** Deterministic 32-bit generator (mulberry32), so the same strings come every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` texts: every fragment alone, each special token alone and inside words, long runs, then
 * random mixes. `specialTokens` are texts of control or user-defined tokens of the vocabulary.
 */
export function tokenizerTexts(count: number, specialTokens: readonly string[], seed = 16): string[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const texts: string[] = [
    "",
    ...fragments,
    ...specialTokens.flatMap((token) => [token, `a${token}b`, ` ${token} `, `${token}\n${token}`]),
    "a".repeat(500),
    "ab".repeat(300),
    "9".repeat(100),
    " ".repeat(64),
    "\n".repeat(40),
    "😀".repeat(50),
    "漢".repeat(120),
  ];
  while (texts.length < count) {
    const parts = 1 + Math.floor(random() * 8);
    let text = "";
    for (let part = 0; part < parts; part++) {
      const choice = random();
      if (choice < 0.1 && specialTokens.length > 0) text += pick(specialTokens);
      else if (choice < 0.2) text += String(Math.floor(random() * 10 ** (1 + Math.floor(random() * 9))));
      else if (choice < 0.25) text += pick([" ", "\n", "\t", "  "]).repeat(1 + Math.floor(random() * 6));
      else text += pick(fragments);
      if (random() < 0.5) text += pick([" ", "", "\n", ", ", ". "]);
    }
    texts.push(text);
  }
  return texts.slice(0, count);
}

/** Whether the text is valid UTF-16 (no lone surrogates), so it encodes to valid UTF-8 as it is. */
export function isWellFormed(text: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}
