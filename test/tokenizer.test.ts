import { describe, expect, it } from 'vitest';
import { ClipTokenizer, cleanText, EOT, SOT } from '../core/tokenizer.js';
import { bundledVocabulary } from '../models/bundled-vocab.js';

const { vocab, merges } = bundledVocabulary();
const tokenizer = new ClipTokenizer(vocab, merges);

describe('CLIP BPE tokenizer', () => {
  it('known answer: "a photo of a cat." (openai/CLIP)', () => {
    const ids = tokenizer.tokenize('a photo of a cat.');
    expect(ids).toHaveLength(77);
    expect(ids.slice(0, 8)).toEqual([49406, 320, 1125, 539, 320, 2368, 269, 49407]);
    expect(ids.slice(8).every((id) => id === 0)).toBe(true);
  });

  it('vocabulary layout: 256 bytes, 256 byte</w>, 48,894 merges, 2 specials', () => {
    expect(Object.keys(vocab)).toHaveLength(49408);
    expect(vocab['!']).toBe(0);
    expect(vocab['!</w>']).toBe(256);
    expect(vocab['<|startoftext|>']).toBe(SOT);
    expect(vocab['<|endoftext|>']).toBe(EOT);
  });

  it('punctuation and digits split as CLIP does: each digit alone, punctuation runs together', () => {
    // '!</w>' = 256 and digits d</w> = 256 + (code('d') − code('!')), from the byte layout.
    const digit = (d: string) => 256 + d.charCodeAt(0) - 33;
    expect(tokenizer.encode('123')).toEqual([digit('1'), digit('2'), digit('3')]);
    expect(tokenizer.encode('!')).toEqual([256]);
    // "hello, world!" — 'hello</w>' ',</w>' 'world</w>' '!</w>'
    expect(tokenizer.encode('Hello, World!')).toEqual([vocab['hello</w>'], vocab[',</w>'], vocab['world</w>'], 256]);
    expect(tokenizer.encode('?!')).toEqual([vocab['?!</w>']]);
    expect(tokenizer.encode("it's")).toEqual([vocab['it</w>'], vocab["'s</w>"]]);
  });

  it('lower-cases, collapses whitespace and unescapes HTML', () => {
    expect(cleanText('  A\tPHOTO \n of &amp;  a   Cat ')).toBe('a photo of & a cat');
    expect(tokenizer.encode('A  PHOTO\nof a CAT.')).toEqual(tokenizer.encode('a photo of a cat.'));
  });

  it('non-ASCII text goes through byte-level BPE and round-trips', () => {
    for (const text of ['café naïve', '東京タワー', 'über 🐈 emoji', 'ελληνικά']) {
      const ids = tokenizer.encode(text);
      expect(ids.length).toBeGreaterThan(0);
      expect(ids.every((id) => id >= 0 && id < 49406)).toBe(true);
      expect(tokenizer.decode(ids)).toBe(cleanText(text));
    }
    // Accented letters are letters (\p{L}): "café" is one word, not split at the é.
    expect(tokenizer.decode(tokenizer.encode('café'))).toBe('café');
  });

  it('truncates long text to 77 ids and keeps EOT last', () => {
    const ids = tokenizer.tokenize('a photo of a cat. '.repeat(40));
    expect(ids).toHaveLength(77);
    expect(ids[0]).toBe(SOT);
    expect(ids[76]).toBe(EOT);
    expect(ids.slice(1, 76)).toEqual(tokenizer.encode('a photo of a cat. '.repeat(40)).slice(0, 75));
  });

  it('empty text is [SOT, EOT]', () => {
    expect(tokenizer.tokenize('').slice(0, 3)).toEqual([SOT, EOT, 0]);
  });
});
