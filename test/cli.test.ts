import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { tempDir, tinyModel } from './helpers.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const code = await main(argv, { out: (t) => (out += t + '\n'), err: (t) => (err += t + '\n') });
  return { code, out, err };
}

describe('nameonly CLI', () => {
  it('has --help on every command, exit 0', async () => {
    const overview = await run('--help');
    expect(overview.code).toBe(0);
    for (const name of ['convert', 'tokenize', 'embed', 'tiny-checkpoint']) {
      expect(overview.out).toContain(name);
      const help = await run(name, '--help');
      expect(help.code).toBe(0);
      expect(help.out).toContain(`nameonly ${name}`);
    }
  });

  it('usage errors exit 2, failures exit 1', async () => {
    expect((await run()).code).toBe(2);
    expect((await run('frobnicate')).code).toBe(2);
    expect((await run('convert')).code).toBe(2);
    expect((await run('convert', 'x', '--bogus')).code).toBe(2);
    const missing = await run('convert', '/nonexistent/checkpoint', '--out', join(tempDir('cli'), 'm'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/does not exist/);
  });

  it('tokenize prints one 77-long array per text', async () => {
    const r = await run('tokenize', 'a photo of a cat.', 'dog');
    expect(r.code).toBe(0);
    const ids = JSON.parse(r.out) as number[][];
    expect(ids).toHaveLength(2);
    expect(ids[0]!.slice(0, 8)).toEqual([49406, 320, 1125, 539, 320, 2368, 269, 49407]);
    expect(ids[1]).toHaveLength(77);
  });

  it('embed prints image and text embeddings; quantized wasm close to fp32 node', async () => {
    const { modelDir } = tinyModel('tiny-p16');
    const png = join(tempDir('img'), 'a.png');
    writeFileSync(png, encodePng({ width: 80, height: 50, data: Uint8Array.from({ length: 80 * 50 * 3 }, (_, i) => (i * 7) % 256), channels: 3, depth: 8 }));
    const fp = JSON.parse((await run('embed', '--model', modelDir, '--image', png, '--text', 'a dog', '--patches')).out);
    expect(fp.images[0].image_embeds).toHaveLength(24);
    expect(fp.images[0].patch_embeds).toHaveLength(16);
    expect(fp.images[0].csa_patch_embeds[0]).toHaveLength(24);
    expect(fp.texts[0].text_embeds).toHaveLength(24);
    const q = JSON.parse((await run('embed', '--model', modelDir, '--image', png, '--runtime', 'wasm', '--quantized')).out);
    const a = fp.images[0].image_embeds as number[], b = q.images[0].image_embeds as number[];
    const cos = a.reduce((s, v, i) => s + v * b[i]!, 0) / Math.hypot(...a) / Math.hypot(...b);
    expect(cos).toBeGreaterThan(0.99);
    const bad = join(tempDir('img'), 'bad.jpg');
    writeFileSync(bad, 'not an image');
    const r = await run('embed', '--model', modelDir, '--image', bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not a JPEG or PNG/);
  });

  it('the package bin runs through node', () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'nameonly.mjs');
    expect(execFileSync(process.execPath, [bin, 'tokenize', 'cat'], { encoding: 'utf8' })).toMatch(/^\[\[49406,2368,49407,0/);
    expect(spawnSync(process.execPath, [bin, 'nope']).status).toBe(2);
  });
});
