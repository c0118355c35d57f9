// Cross-check of models/tiny-v4/tokenizer.json and the fixtures against Hugging Face `tokenizers`
// (the Rust library, through its Node binding from the npm registry). Optional developer check;
// nothing in the build or in `make test` needs it.
//
//   npm install --prefix /tmp/hftok tokenizers@0.23.2
//   NODE_PATH=/tmp/hftok/node_modules node tools/tokenizer/hf_crosscheck.js
//
// For every valid-UTF-8 torture text (HF takes only valid UTF-8) and for the whole corpus it loads
// the file with HF, encodes without post-processing, and requires ids equal to the *.special.ids
// fixture (HF always recognises added tokens, which is bpe.py's allow_special=True) and
// HF decode(ids) equal to the text. Prints one line per case and "N passed, N failed".
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const root = path.resolve(__dirname, '..', '..');
const fix = path.join(root, 'tests', 'fixtures', 'tokenizer');

function readIds(file) {
  const t = fs.readFileSync(file, 'ascii').trim();
  return t === '' ? [] : t.split(' ').map(Number);
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

(async () => {
  const tok = Tokenizer.fromFile(path.join(root, 'models', 'tiny-v4', 'tokenizer.json'));
  const manifest = JSON.parse(fs.readFileSync(path.join(fix, 'manifest.json'), 'utf8'));
  const cases = manifest.cases
    .filter((c) => c.valid_utf8)
    .map((c) => ({ name: c.text, text: path.join(fix, c.text), ids: path.join(fix, c.special_ids) }));
  cases.push({ name: 'corpus', text: path.join(root, manifest.corpus.source.split(' ')[0]),
               ids: path.join(fix, manifest.corpus.ids) });
  let passed = 0;
  let failed = 0;
  for (const c of cases) {
    const text = fs.readFileSync(c.text, 'utf8');
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const got = Array.from(enc.getIds());
    const want = readIds(c.ids);
    const dec = await tok.decode(got, false);
    const ok = same(got, want) && dec === text;
    let why = '';
    if (!same(got, want)) {
      let i = 0;
      while (i < got.length && got[i] === want[i]) i++;
      why = ` first difference at token ${i}: hf ${got.slice(i, i + 5)} vs fixture ${want.slice(i, i + 5)}`;
    } else if (dec !== text) {
      why = ' HF decode does not give the text back';
    }
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.name} (${got.length} tokens)${why}`);
    if (ok) passed++; else failed++;
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.error(`hf_crosscheck: ${e.message || e}`); process.exit(1); });
