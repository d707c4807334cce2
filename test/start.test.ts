// The README's main command, end to end: build the default, publish to local R2, wrangler dev, one request.
import { describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { tempDir } from './helpers.js';

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
