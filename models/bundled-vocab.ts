// The OpenAI CLIP BPE vocabulary shipped with the repo (core/assets/clip-bpe, MIT).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { vocabFromMerges } from '../core/tokenizer.js';

const BPE_PATH = new URL('../core/assets/clip-bpe/bpe_simple_vocab_16e6.txt.gz', import.meta.url);

let cached: { vocab: Record<string, number>; merges: string[] } | undefined;

export function bundledVocabulary(): { vocab: Record<string, number>; merges: string[] } {
  if (!cached) {
    const lines = gunzipSync(readFileSync(BPE_PATH)).toString('utf8').split('\n');
    const merges = lines.slice(1, 49152 - 256 - 2 + 1); // as openai/CLIP simple_tokenizer.py
    cached = { vocab: vocabFromMerges(merges), merges };
  }
  return cached;
}
