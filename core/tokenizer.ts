// CLIP's byte-level BPE tokenizer (Radford et al. 2021; openai/CLIP simple_tokenizer.py),
// pure TypeScript so it runs in Node and in workerd. Vocabulary and merges are data.

export const SOT = 49406;
export const EOT = 49407;
export const CONTEXT_LENGTH = 77;

const SPLIT = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2's byte order: printable bytes first, then the rest (the vocabulary's first 256 rows). */
function byteOrder(): number[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) bs.push(b);
  return bs;
}

/** GPT-2's reversible byte -> printable unicode map. */
export function bytesToUnicode(): string[] {
  const map: string[] = new Array(256);
  byteOrder().forEach((b, i) => (map[b] = String.fromCodePoint(i < 188 ? b : 256 + i - 188)));
  return map;
}

/** OpenAI's vocabulary layout from its merges list (bpe_simple_vocab_16e6.txt). */
export function vocabFromMerges(merges: string[]): Record<string, number> {
  const base = bytesToUnicode();
  const chars = byteOrder().map((b) => base[b]!);
  const words = [...chars, ...chars.map((c) => c + '</w>'), ...merges.map((m) => m.replace(' ', '')), '<|startoftext|>', '<|endoftext|>'];
  const vocab: Record<string, number> = {};
  words.forEach((w, i) => (vocab[w] = i));
  return vocab;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function htmlUnescape(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return ENTITIES[body.toLowerCase()] ?? m;
  });
}

/** basic_clean (html unescape twice, NFC as ftfy would) + whitespace_clean + lower. */
export function cleanText(text: string): string {
  return htmlUnescape(htmlUnescape(text.normalize('NFC'))).replace(/\s+/g, ' ').trim().toLowerCase();
}

export class ClipTokenizer {
  private readonly ranks = new Map<string, number>();
  private readonly byteMap = bytesToUnicode();
  private readonly cache = new Map<string, number[]>();
  private inverse?: Record<number, string>;

  constructor(
    private readonly vocab: Record<string, number>,
    merges: string[],
  ) {
    merges.forEach((m, i) => this.ranks.set(m, i));
    if (vocab['<|startoftext|>'] !== SOT || vocab['<|endoftext|>'] !== EOT) {
      throw new Error('tokenizer vocabulary does not have CLIP special tokens at 49406/49407');
    }
  }

  private bpe(token: string): number[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    let word = [...token];
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const a = word[best]!, b = word[best + 1]!;
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(word[i]!);
      }
      word = next;
    }
    const ids = word.map((piece) => {
      const id = this.vocab[piece];
      if (id === undefined) throw new Error(`BPE piece ${JSON.stringify(piece)} is not in the vocabulary`);
      return id;
    });
    if (this.cache.size < 10000) this.cache.set(token, ids);
    return ids;
  }

  /** Inverse of encode (for tests and debugging): ids -> cleaned text. */
  decode(ids: number[]): string {
    if (!this.inverse) this.inverse = Object.fromEntries(Object.entries(this.vocab).map(([k, v]) => [v, k]));
    const unByte = new Map(this.byteMap.map((c, b) => [c, b]));
    const text = ids.map((id) => this.inverse![id] ?? '').join('');
    const bytes = [...text.replaceAll('</w>', ' ')].map((c) => unByte.get(c) ?? 32);
    return new TextDecoder().decode(Uint8Array.from(bytes)).trim();
  }

  /** BPE ids of the text, without start/end tokens. */
  encode(text: string): number[] {
    const ids: number[] = [];
    const utf8 = new TextEncoder();
    for (const match of cleanText(text).matchAll(SPLIT)) {
      const piece = match[0];
      if (piece === '<|startoftext|>') ids.push(SOT);
      else if (piece === '<|endoftext|>') ids.push(EOT);
      else ids.push(...this.bpe(Array.from(utf8.encode(piece), (b) => this.byteMap[b]!).join('')));
    }
    return ids;
  }

  /** [SOT, ...ids, EOT] zero-padded to the context; over-long text is cut, keeping EOT. */
  tokenize(text: string, contextLength = CONTEXT_LENGTH): number[] {
    return this.tokenizeChecked(text, contextLength).ids;
  }

  /** As tokenize, and whether the text was cut to fit the context. */
  tokenizeChecked(text: string, contextLength = CONTEXT_LENGTH): { ids: number[]; truncated: boolean } {
    const encoded = this.encode(text);
    const ids = [SOT, ...encoded.slice(0, contextLength - 2), EOT];
    while (ids.length < contextLength) ids.push(0);
    return { ids, truncated: encoded.length > contextLength - 2 };
  }
}

/**
 * The tokens a text tower needs for its pooled output: up to and including the pooled token,
 * HF's rule: legacy configs (eos_token_id 2) pool at argmax(ids), others at the first eos.
 * Under the causal mask the tokens after it never change it.
 */
export function pooledTokens(ids: readonly number[], eosTokenId: number): number[] {
  const at = eosTokenId === 2 ? ids.indexOf(Math.max(...ids)) : Math.max(0, ids.indexOf(eosTokenId));
  return ids.slice(0, at + 1);
}

/** The merges of a merges.txt: one per line, without the `#version` header. */
export function parseMerges(mergesText: string): string[] {
  return mergesText.split('\n').filter((l) => l && !l.startsWith('#version'));
}

/** A tokenizer from a model folder's vocab.json and merges.txt texts. */
export function tokenizerFromFiles(vocabJson: string, mergesText: string): ClipTokenizer {
  return new ClipTokenizer(JSON.parse(vocabJson) as Record<string, number>, parseMerges(mergesText));
}
