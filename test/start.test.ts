// The README's main command, end to end: build the default, publish to local R2, wrangler dev, one request.
import { describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, tinyModel } from './helpers.js';

describe('npm start', () => {
  it('serves the shapes-world default through wrangler dev and answers a classify request', { timeout: 300_000 }, async () => {
    let out = '', err = '';
    const code = await main(['start', '--check', '--work', tempDir('start'), '--port', '18787'], { out: (t) => (out += t), err: (t) => (err += t + '\n') });
    expect(code, err).toBe(0);
    expect(out).toMatch(/nameonly is serving the shapes-world default at http:\/\/127\.0\.0\.1:18787/);
    expect(out).toMatch(/knows only a synthetic world of coloured shapes/);
    expect(out).toMatch(/-> \w+ \d+%/);
  });
});

describe('npm start traps', () => {
  it('a busy port fails at once, naming the port, before any work', async () => {
    const { createServer } = await import('node:net');
    const other = createServer().listen(18788, '127.0.0.1');
    await new Promise((r) => other.once('listening', r));
    try {
      let err = '';
      const work = tempDir('busy');
      const code = await main(['start', '--check', '--work', work, '--port', '18788'], { out: () => {}, err: (t) => (err += t + '\n') });
      expect(code).toBe(1);
      expect(err).toMatch(/port 18788 is already in use by another program/);
      expect(readdirSync(work)).toEqual([]); // nothing was converted or built
    } finally {
      other.close();
    }
  });

  it('--model with --classes: the index named after the class file, the model named, no example it cannot know', { timeout: 300_000 }, async () => {
    const { checkpointDir } = tinyModel('tiny-p16');
    const classes = join(tempDir('names'), 'receipts.txt');
    writeFileSync(classes, 'receipt\ninvoice\nmenu\n');
    let out = '', err = '';
    const code = await main(['start', '--check', '--model', checkpointDir, '--classes', classes, '--work', tempDir('own'), '--port', '18789'], { out: (t) => (out += t), err: (t) => (err += t + '\n') });
    expect(code, err).toBe(0);
    expect(out).toMatch(/nameonly is serving tiny-p16 with index "receipts" at http:\/\/127\.0\.0\.1:18789/);
    expect(out).not.toMatch(/star|shapes/);
    expect(out).toMatch(/@<your image>/);
  });

  it('--model without --classes is a usage error', async () => {
    let err = '';
    expect(await main(['start', '--model', 'somewhere'], { out: () => {}, err: (t) => (err += t) })).toBe(2);
    expect(err).toMatch(/--model needs --classes/);
  });
});
