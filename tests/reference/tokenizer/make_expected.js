// Writes the expected token ids that tests/data/tokenizer_test.cpp compares against, computed with the
// HuggingFace `tokenizers` npm package (the reference implementation; Rust compiled to a Node addon).
//
//   npm install --prefix /tmp/hf tokenizers          # once, outside the repository
//   NODE_PATH=/tmp/hf/node_modules node tests/reference/tokenizer/make_expected.js \
//       /work/shared/data/20B_tokenizer.json tests/data/files/tokenizer
//   NODE_PATH=/tmp/hf/node_modules node tests/reference/tokenizer/make_expected.js --fortunes \
//       /work/shared/data/20B_tokenizer.json tests/data/files/tokenizer [/usr/share/games/fortunes]
//
// Outputs (in the output directory):
//   parity_sample.jsonl    one {"text", "ids", "normalized", "decoded"} per line: a hand-picked and a
//                          seeded-random text sample
//   parity_variants.json   the same for edited copies of the tokenizer.json (added-token flags,
//                          add_prefix_space), each described by literal text replacements
//   parity_fortunes.json   --fortunes: per file of Debian's `fortunes` package, its length and hash and
//                          the count and hash of its ids (files are too big to commit)
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const args = process.argv.slice(2);
const fortunesMode = args[0] === '--fortunes';
if (fortunesMode) args.shift();
const [tokenizerPath, outDir, fortunesDir = '/usr/share/games/fortunes'] = args;
if (!tokenizerPath || !outDir) {
  console.error('usage: make_expected.js [--fortunes] <tokenizer.json> <output dir> [fortunes dir]');
  process.exit(2);
}
const tokenizerText = fs.readFileSync(tokenizerPath, 'utf8');

// ---- deterministic pseudo-random numbers (mulberry32) ---------------------------------------------
function makeRandom(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (list) => list[Math.floor(next() * list.length)] };
}

// ---- the hand-picked sample ---------------------------------------------------------------------
const nfd = (s) => s.normalize('NFD');
const handPicked = [
  '', ' ', '\n', '\t', 'a', 'Hello world', 'Hello, world! How are you today?',
  'The quick brown fox jumps over the lazy dog.\nTHE QUICK BROWN FOX.\n\n\nEnd.',
  // contractions, upper case ones and curly apostrophes do not count as contractions
  "it's don't we'll I'd they're I've I'm", "IT'S DON'T WE'LL", "it’s don’t", "'s 't 're 've 'm 'll 'd",
  "''s x's's rock'n'roll 'tis '90s o'clock", "'", "''", "'''", " 's", "don't!'s", "'S", "y'all'd've",
  // digits and numbers
  '0', '1234567890', '3.14159 2.71828', '1,000,000.00', '$5 €10 ¥2000', '12abc34', 'x1 y22 z333',
  '٠١٢٣٤٥٦٧٨٩ ۰۱۲', 'x² + y³ = ½ ⅔ ⅞', 'Ⅻ ⅻ ⑫ ⒓', '𝟘𝟙𝟚', '१२३',
  // accents, NFC vs NFD, canonical reordering, lone marks
  'café naïve résumé Ångström', nfd('café naïve résumé Ångström'), 'Tiếng Việt có dấu', nfd('Tiếng Việt có dấu'),
  'a\u0301', 'e\u0301\u0301', 'a\u0323\u0301', 'a\u0301\u0323', 'q\u0307\u0323', '\u0301', '\u0301abc', ' \u0301',
  '\u0301\u0301\u0301', 'x\u0300 \u0300y', '\u1100\u1161\u11A8', '\u1100\u1161', '\uAC00\u11A8', '한국어 텍스트',
  nfd('한국어 텍스트'), 'Ω Å K', '\u212B\u2126\u212A', '\u0344 \u0F73 \u0958', 'ﬁ ﬂ ﬃ', '\u00C5\u0328',
  'Ελληνικά με τόνους', nfd('Ελληνικά με τόνους'), 'Ǆ ǅ ǆ', '\u1E9B\u0323',
  // Unicode version seams: normalisation is Unicode 9.0 in tokenizers, character classes 16.0
  'a\u{1E944}\u0323', 'a\u{11A34}\u0323', 'a\u{10D24}\u0323', 'a\u{1E2AE}\u0323', 'a\u{16FF0}b',
  'x\u{10D50}\u{10D51}y', 'x\u{105C0}y', '1\u{1CCF0}2', 'x\u{10940}y', 'x\u{11F04}y', '\u{1E030}\u{1E031}',
  // scripts
  '中文文本，包含标点符号。', '日本語のテキスト、カタカナとひらがな。', 'ｶﾀｶﾅ ＦＵＬＬＷＩＤＴＨ',
  'العربية مع التشكيل: مُحَمَّد', 'עברית עם ניקוד: שָׁלוֹם', nfd('שָׁלוֹם'), 'हिन्दी पाठ', 'ไทย ภาษา', 'Русский текст',
  'ქართული', 'Հայերեն', 'ᐃᓄᒃᑎᑐᑦ', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝓈𝒸𝓇𝒾𝓅𝓉',
  // emoji
  '😀', 'I ❤️ NY', '👍🏽👍🏿', '👨‍👩‍👧‍👦 family', '🏳️‍🌈 flag', '🇩🇪🇫🇷🇯🇵', 'emoji😀in😀words', '1️⃣ #️⃣',
  '🧑🏻‍🤝‍🧑🏿', '\u{1F9D1}\u200D\u{1F4BB}',
  // whitespace
  ...Array.from({ length: 30 }, (_, i) => 'a' + ' '.repeat(i + 1) + 'b'),
  ...Array.from({ length: 30 }, (_, i) => ' '.repeat(i + 1)),
  ...Array.from({ length: 8 }, (_, i) => ' '.repeat(i + 1) + 'x' + ' '.repeat(i + 1)),
  'a\n\nb', 'a\n\n\n\nb', 'a \n b', 'a\t\tb', 'a \t b', '\t\t\tx', 'x\r\ny\r\n', '\r\n\r\n',
  'line1\nline2\n', ' \n \n ', 'a\u00A0b', 'a\u00A0\u00A0b', 'a\u2003b\u3000c', 'a\u0085b', 'a\u2028b\u2029c',
  'a\u200Bb', 'a\uFEFFb', '\uFEFFstart', 'a\u180Eb', 'a\u001Cb\u001Fc', '  \u00A0 x', '\u3000\u3000x',
  'x \u00A0', 'end with spaces   ', 'end with newline\n', '   leading', '\n\n\nleading newlines',
  // code
  'def f(x):\n    return x ** 2  # square\n',
  'int main() {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
  'for (int i = 0; i < n; ++i) { a[i] += b[i] * c; }',
  '{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}',
  '<html><body class="x">Hi &amp; bye</body></html>', 'https://example.com/path?q=1&r=two#frag',
  'user@example.org', 'C:\\Windows\\System32', '$ ls -la | grep "\\.cpp$" > out.txt',
  '        indented code', '    \tmixed indent', 'x = [\n        1,\n        2,\n    ]',
  // added tokens inline
  '<|endoftext|>', 'Hello<|endoftext|>World', 'Hello <|endoftext|> World', '<|endoftext|><|endoftext|>',
  '<|endoftext|>  x   y\n\n', 'a<|padding|>b', '<|endoftext|', '|endoftext|>', '<|endoftext||>', '<<|endoftext|>>',
  '<|ENDOFTEXT|>', '< |endoftext|>', 'e<|endoftext|>\u0301', 'e\u0301<|endoftext|>e\u0301', '<|endoftext|>\n',
  ' <|endoftext|> ', 'x  <|endoftext|>  y', '<|padding|><|endoftext|><|padding|>',
  // control characters and odd code points
  '\u0000', 'a\u0000b', '\u001B[31mred\u001B[0m', 'a\u007Fb', '\uFFFD', '\uE000\uF8FF', '\uFFFF', '\u{10FFFF}',
  '\u{E0041}\u{E0042}', 'a\u0008b\u0008c', '_under_score_', '...', '!!!???', '—–-', '«»„“”', '©®™',
  // long runs
  'a'.repeat(300), 'ab'.repeat(200), '9'.repeat(200), '!'.repeat(150), ' '.repeat(100) + 'x', '\n'.repeat(50),
  'Donaudampfschifffahrtsgesellschaftskapitänswitwe', 'pneumonoultramicroscopicsilicovolcanoconiosis',
  'aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZW5jb2RlZCB0ZXh0IGZvciB0ZXN0aW5n',
];

// ---- seeded random mixtures -----------------------------------------------------------------------
const pools = [
  ['a', 'b', 'e', 'the', 'The', 'is', 'x', 'Z', 'hello', 'world', 'Quick'],
  ['0', '1', '42', '2024', '3.5', '٣', '²', '½'],
  [' ', ' ', ' ', '  ', '   ', '\n', '\n\n', '\t', '\r\n', '\u00A0', '\u3000', '\u2009', '\u0085'],
  ['.', ',', '!', '?', '-', '(', ')', '"', '#', '@', '/', '\\', '*', '_', '…', '—', '«'],
  ["'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", '’'],
  ['é', 'e\u0301', '\u0301', '\u0323', '\u0308', 'ñ', 'n\u0303', 'Å', 'A\u030A', '\u05B8', '\u0651', '\u093F',
   '\u1100', '\u1161', '\u11A8', '가', '각', 'ᄀ'],
  ['中', '文', '日本', 'カ', 'ا', 'ש', 'क', 'ไ', 'Ж', 'ß', 'ǅ', '𝔘'],
  ['😀', '👍', '🏽', '\u200D', '\uFE0F', '👨‍👩‍👧', '🇩🇪', '❤'],
  ['<|endoftext|>', '<|padding|>', '<|endoftext|', '|>', '<|'],
  ['\u{1E944}', '\u{11A34}', '\u{10D50}', '\u{10940}', '\u200B', '\uFEFF', '\u0000', '\u001B'],
];
const poolWeights = [30, 8, 25, 10, 6, 8, 5, 4, 2, 2];
function randomText(random) {
  const units = 1 + random.int(random.next() < 0.2 ? 120 : 25);
  const total = poolWeights.reduce((a, b) => a + b, 0);
  let text = '';
  for (let i = 0; i < units; ++i) {
    let r = random.int(total);
    let pool = 0;
    while (r >= poolWeights[pool]) r -= poolWeights[pool++];
    text += random.next() < 0.05 ? ' '.repeat(1 + random.int(30)) : random.pick(pools[pool]);
  }
  return text;
}
const random = makeRandom(20240501);
const randomTexts = Array.from({ length: 600 }, () => randomText(random));

// ---- edited copies of the tokenizer ---------------------------------------------------------------
function replaceOnce(text, from, to) {
  const at = text.indexOf(from);
  if (at < 0) throw new Error('replacement source not found: ' + JSON.stringify(from));
  return text.slice(0, at) + to + text.slice(at + from.length);
}
const tokenFlags = (content, singleWord, lstrip, rstrip) =>
  `"content": "${content}",\n      "single_word": ${singleWord},\n      "lstrip": ${lstrip},\n      "rstrip": ${rstrip},`;
const variants = [
  {
    name: 'added token flags: <|endoftext|> single_word, <|padding|> lstrip + rstrip',
    replacements: [
      [tokenFlags('<|endoftext|>', false, false, false), tokenFlags('<|endoftext|>', true, false, false)],
      [tokenFlags('<|padding|>', false, false, false), tokenFlags('<|padding|>', false, true, true)],
    ],
  },
  {
    name: 'pre_tokenizer add_prefix_space true',
    replacements: [['"add_prefix_space": false', '"add_prefix_space": true']],
  },
];
const variantTexts = [
  'a<|endoftext|>b', 'a <|endoftext|> b', 'a <|endoftext|>b', 'a<|endoftext|> b', '<|endoftext|>', '1<|endoftext|>2',
  'é<|endoftext|>é', 'x\u0301<|endoftext|>', '.<|endoftext|>.', ' <|endoftext|>', '<|endoftext|>\n',
  'x <|padding|>  y', 'x<|padding|>\n\ny', 'x \t <|padding|> \u00A0 y', '<|padding|>', '  <|padding|>  ',
  '<|padding|><|padding|>', 'a  <|padding|>   b', 'Hello world', ' Hello world', 'Hello  world',
  'x<|endoftext|>y<|padding|>z', '²<|endoftext|>', '_<|endoftext|>_', '\u200D<|endoftext|>', '٣<|endoftext|>',
  'Ⅻ<|endoftext|>', '<|endoftext|>½', '<|endoftext|>\u0903', '\u00AD<|endoftext|>', '-<|endoftext|>-', '中<|endoftext|>', '  leading', '\nnewline', "'s", ...handPicked.slice(0, 40), ...randomTexts.slice(0, 80),
];

// ---- fortunes corpus ------------------------------------------------------------------------------
// Polynomial hash mod 2^32, easy to reproduce in C++ with uint32_t arithmetic.
function hashValues(values) {
  let hash = 0;
  for (const value of values) hash = (Math.imul(hash, 1000003) + value + 1) >>> 0;
  return hash;
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  if (fortunesMode) {
    const tokenizer = Tokenizer.fromString(tokenizerText);
    const files = fs.readdirSync(fortunesDir).filter((name) => {
      const full = path.join(fortunesDir, name);
      return !name.endsWith('.dat') && !fs.lstatSync(full).isSymbolicLink() && fs.statSync(full).isFile();
    }).sort();
    const result = { source: 'Debian fortunes package, one document per file', files: [] };
    let totalIds = 0;
    for (const name of files) {
      const bytes = fs.readFileSync(path.join(fortunesDir, name));
      const text = bytes.toString('utf8');
      if (!Buffer.from(text, 'utf8').equals(bytes)) {
        console.error(`skipping ${name}: not valid UTF-8`);
        continue;
      }
      const ids = (await tokenizer.encode(text)).getIds();
      totalIds += ids.length;
      result.files.push({ name, bytes: bytes.length, bytes_hash: hashValues(bytes), ids: ids.length,
                          ids_hash: hashValues(ids) });
    }
    fs.writeFileSync(path.join(outDir, 'parity_fortunes.json'), JSON.stringify(result, null, 1) + '\n');
    console.error(`${result.files.length} files, ${totalIds} ids`);
    return;
  }

  const describe = async (tokenizer, text) => {
    const ids = text === '' ? [] : (await tokenizer.encode(text)).getIds();
    return { text, ids, normalized: tokenizer.getNormalizer().normalizeString(text),
             decoded: await tokenizer.decode(ids, false) };
  };
  const tokenizer = Tokenizer.fromString(tokenizerText);
  const lines = [];
  for (const text of [...handPicked, ...randomTexts]) lines.push(JSON.stringify(await describe(tokenizer, text)));
  fs.writeFileSync(path.join(outDir, 'parity_sample.jsonl'), lines.join('\n') + '\n');

  const variantResults = [];
  for (const variant of variants) {
    let edited = tokenizerText;
    for (const [from, to] of variant.replacements) edited = replaceOnce(edited, from, to);
    const variantTokenizer = Tokenizer.fromString(edited);
    const cases = [];
    for (const text of variantTexts) {
      const ids = text === '' ? [] : (await variantTokenizer.encode(text)).getIds();
      cases.push({ text, ids });
    }
    variantResults.push({ name: variant.name, replacements: variant.replacements, cases });
  }
  fs.writeFileSync(path.join(outDir, 'parity_variants.json'), JSON.stringify(variantResults) + '\n');
  console.error(`${lines.length} sample texts, ${variantResults.length} variants`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
