// Encoding throughput of HuggingFace `tokenizers` (npm package, Rust compiled to a Node addon), measured
// like `rwkv bench tokenizer`: same documents, MB/s of UTF-8 text and tokens/s per pass, median of passes.
//
//   npm install --prefix /tmp/hf tokenizers
//   NODE_PATH=/tmp/hf/node_modules node tests/reference/tokenizer/bench_hf.js \
//       --tokenizer /work/shared/data/20B_tokenizer.json --input corpus.jsonl --threads 2 [--repeats 3]
//
// Documents go through Tokenizer.encodeBatch in batches of --batch documents (default 1000); encodeBatch
// runs on Rust's rayon thread pool, whose size is set with RAYON_NUM_THREADS (this script re-runs itself
// with it set to --threads). The time includes getIds() on each result, the ids being what we need.
// A plain-text input is one document, encoded with a single encode() call (single-threaded in tokenizers).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const options = { tokenizer: '', input: '', threads: '1', repeats: '3', batch: '1000', text_key: 'text' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!(key in options) || i + 1 >= argv.length) {
    console.error(`usage: bench_hf.js --tokenizer T.json --input F [--threads K] [--repeats R] [--batch B]`);
    process.exit(2);
  }
  options[key] = argv[i + 1];
}
if (!options.tokenizer || !options.input) {
  console.error('bench_hf.js: --tokenizer and --input are required');
  process.exit(2);
}
if (process.env.RAYON_NUM_THREADS !== options.threads) {
  const child = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit', env: { ...process.env, RAYON_NUM_THREADS: options.threads },
  });
  process.exit(child.status ?? 1);
}

const { Tokenizer } = require('tokenizers');

async function main() {
  let start = process.hrtime.bigint();
  const tokenizer = Tokenizer.fromFile(options.tokenizer);
  const loadMs = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(`tokenizers (npm ${require('tokenizers/package.json').version}): ${options.tokenizer} loaded in ${loadMs.toFixed(1)} ms`);

  const extension = path.extname(options.input);
  const jsonl = extension === '.jsonl' || extension === '.json';
  const text = fs.readFileSync(options.input, 'utf8');
  const documents = jsonl
    ? text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line)[options.text_key])
    : [text];
  const bytes = documents.reduce((sum, doc) => sum + Buffer.byteLength(doc, 'utf8'), 0);
  console.log(`input: ${options.input}, ${documents.length} documents, ${(bytes / 1e6).toFixed(1)} MB`);

  const batchSize = Number(options.batch);
  const rates = [];
  let tokens = 0;
  for (let repeat = 0; repeat < Number(options.repeats); ++repeat) {
    tokens = 0;
    start = process.hrtime.bigint();
    if (documents.length === 1) {
      tokens = (await tokenizer.encode(documents[0])).getIds().length;
    } else {
      for (let first = 0; first < documents.length; first += batchSize) {
        const encodings = await tokenizer.encodeBatch(documents.slice(first, first + batchSize));
        for (const encoding of encodings) tokens += encoding.getIds().length;
      }
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(bytes / 1e6 / seconds);
    console.log(`  repeat ${repeat + 1}: ${seconds.toFixed(2)} s, ${(bytes / 1e6 / seconds).toFixed(1)} MB/s, ` +
                `${(tokens / seconds / 1e6).toFixed(2)} M tokens/s`);
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  console.log(`tokenizers: RAYON_NUM_THREADS=${options.threads}, ${tokens} tokens, median ${median.toFixed(1)} MB/s, ` +
              `${(median * 1e6 * tokens / bytes / 1e6).toFixed(2)} M tokens/s`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
