import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { randomUnitRows, tempDir, tinyModel } from './helpers.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const code = await main(argv, { out: (t) => (out += t + '\n'), err: (t) => (err += t + '\n') });
  return { code, out, err };
}

describe('nameonly CLI', () => {
  it('has --help on every command, exit 0', async () => {
    const overview = await run('--help');
    expect(overview.code).toBe(0);
    for (const name of ['convert', 'tokenize', 'embed', 'score', 'tune', 'tiny-checkpoint']) {
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

  it('convert never replaces what a user owns: not the checkpoint, nor a folder holding it, nor a foreign folder', async () => {
    const { checkpointDir } = tinyModel('tiny-p16');
    const before = readdirSync(checkpointDir).sort();
    const onItself = await run('convert', checkpointDir, '--out', checkpointDir);
    expect(onItself.code).toBe(1);
    expect(onItself.err).toMatch(/is the checkpoint folder or holds it; converting there would destroy the checkpoint. Name a separate folder, e.g. --out .*-nameonly/);
    expect((await run('convert', checkpointDir, '--out', dirname(checkpointDir))).code).toBe(1);
    expect(readdirSync(checkpointDir).sort()).toEqual(before);
    const foreign = tempDir('foreign');
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    const refused = await run('convert', checkpointDir, '--out', foreign);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/exists and is not a model folder nameonly convert wrote; refusing to replace it/);
    expect(readFileSync(join(foreign, 'notes.txt'), 'utf8')).toBe('mine');
    // A folder convert wrote is replaced (atomically), and the index hint names a separate folder.
    const again = join(tempDir('again'), 'model');
    expect((await run('convert', checkpointDir, '--out', again)).code).toBe(0);
    expect((await run('convert', checkpointDir, '--out', again)).code).toBe(0);
    const hint = await run('embed', '--model', checkpointDir, '--text', 'a cat');
    expect(hint.code).toBe(1);
    expect(hint.err).toMatch(new RegExp(`convert it into a separate folder first, e.g. \`nameonly convert ${checkpointDir} --out ${checkpointDir}-nameonly\``));
  });

  it('tokenize prints one 77-long array per text', async () => {
    const r = await run('tokenize', 'a photo of a cat.', 'dog');
    expect(r.code).toBe(0);
    const ids = JSON.parse(r.out) as number[][];
    expect(ids).toHaveLength(2);
    expect(ids[0]!.slice(0, 8)).toEqual([49406, 320, 1125, 539, 320, 2368, 269, 49407]);
    expect(ids[1]).toHaveLength(77);
  });

  it('embed prints image and text embeddings; quantized wasm and the engine close to fp32 node', async () => {
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
    // The Worker's image tower, with its patch outputs.
    const engine = JSON.parse((await run('embed', '--model', modelDir, '--image', png, '--runtime', 'engine', '--patches')).out);
    const e = engine.images[0].image_embeds as number[];
    expect(e.reduce((s, v, i) => s + v * a[i]!, 0) / Math.hypot(...e) / Math.hypot(...a)).toBeGreaterThan(0.999);
    expect(engine.images[0].csa_patch_embeds).toHaveLength(16);
    const bad = join(tempDir('img'), 'bad.jpg');
    writeFileSync(bad, 'not an image');
    const r = await run('embed', '--model', modelDir, '--image', bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not a JPEG or PNG/);
  });

  it('publish without credentials fails with wrangler’s reason, its colour codes stripped; the model is found from the index', { timeout: 120_000 }, async () => {
    const { modelDir } = tinyModel('tiny-p16');
    const classes = join(tempDir('pub'), 'names.txt');
    writeFileSync(classes, 'cat\ndog\n');
    const out = join(tempDir('pubindex'), 'names');
    expect((await run('index', '--classes', classes, '--model', modelDir, '--out', out)).code).toBe(0);
    const saved = { token: process.env.CLOUDFLARE_API_TOKEN, colour: process.env.FORCE_COLOR };
    delete process.env.CLOUDFLARE_API_TOKEN;
    process.env.FORCE_COLOR = '1'; // wrangler colours its errors
    try {
      const r = await run('publish', out); // no --model, no --bucket: from the index and wrangler.toml
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/wrangler could not upload models\/\w+\/.*CLOUDFLARE_API_TOKEN/);
      expect(r.err).not.toMatch(/\x1b/);
    } finally {
      if (saved.token !== undefined) process.env.CLOUDFLARE_API_TOKEN = saved.token;
      if (saved.colour === undefined) delete process.env.FORCE_COLOR;
      else process.env.FORCE_COLOR = saved.colour;
    }
  });

  it('an index refuses a model other than the one it was built with; onnxruntime-node leaves no telemetry file behind', async () => {
    const { modelDir } = tinyModel('tiny-p16');
    const other = tinyModel('tiny-p8-bf16').modelDir;
    const classes = join(tempDir('own'), 'names.txt');
    writeFileSync(classes, 'cat\ndog\n');
    const out = join(tempDir('ownindex'), 'names');
    expect((await run('index', '--classes', classes, '--model', modelDir, '--out', out)).code).toBe(0);
    const image = join(tempDir('img'), 'a.png');
    writeFileSync(image, encodePng({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(100), channels: 3, depth: 8 }));
    expect((await run('classify', '--index', out, image)).code).toBe(0); // the model recorded in the index
    const wrong = await run('classify', '--index', out, '--model', other, image);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/was built for model tiny-p16 .*not for the model at/);
    // The index command ran onnxruntime-node sessions in this process (its text tower): ORT 1.30's
    // 1DS telemetry would have left /tmp/mat-debug-<pid>.log.
    expect(readdirSync('/tmp').filter((f) => f === `mat-debug-${process.pid}.log`)).toEqual([]);
  });

  it('the package bin runs through node', () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'nameonly.mjs');
    expect(execFileSync(process.execPath, [bin, 'tokenize', 'cat'], { encoding: 'utf8' })).toMatch(/^\[\[49406,2368,49407,0/);
    expect(spawnSync(process.execPath, [bin, 'nope']).status).toBe(2);
  });

  describe('score and tune on feature dumps', () => {
    const rows = (seed: number, n: number, d = 8) => {
      const m = randomUnitRows(n, d, seed);
      return Array.from({ length: n }, (_, i) => Array.from(m.data.subarray(i * d, (i + 1) * d)).map((v) => v * 3)); // not normalised: the command does it
    };
    const dump = {
      image_embeds: rows(1, 3),
      patch_embeds: [rows(2, 4), rows(3, 4), rows(4, 4)],
      text_classifier: rows(5, 4),
      support_features: rows(6, 12),
      support_labels: Array.from({ length: 12 }, (_, i) => i % 4),
      params: { alpha: 2, beta: 5, gamma: 0.5 },
    };
    const write = (value: unknown) => {
      const path = join(tempDir('score'), 'f.json');
      writeFileSync(path, JSON.stringify(value));
      return path;
    };

    it('per-image results do not depend on the batch', async () => {
      for (const method of ['clip', 'calip', 'tipx', 'combined']) {
        const all = JSON.parse((await run('score', '--method', method, '--input', write(dump))).out).logits;
        const one = JSON.parse((await run('score', '--method', method, '--input', write({ ...dump, image_embeds: dump.image_embeds.slice(1, 2), patch_embeds: dump.patch_embeds.slice(1, 2) }))).out).logits;
        expect(all).toHaveLength(3);
        expect(one[0]).toEqual(all[1]);
      }
    });

    it('calip with beta2 = beta3 = 0 prints the clip logits', async () => {
      const clip = JSON.parse((await run('score', '--method', 'clip', '--input', write(dump))).out).logits;
      const calip = JSON.parse((await run('score', '--method', 'calip', '--input', write({ ...dump, params: { beta2: 0, beta3: 0 } }))).out).logits;
      expect(calip).toEqual(clip);
    });

    it('bad inputs: clear message, exit 1; bad flags: exit 2', async () => {
      const missingSupport = await run('score', '--method', 'tipx', '--input', write({ ...dump, support_features: undefined }));
      expect(missingSupport.code).toBe(1);
      expect(missingSupport.err).toMatch(/needs a support set/);
      const ragged = await run('score', '--method', 'clip', '--input', write({ ...dump, image_embeds: [[1, 2]] }));
      expect(ragged.code).toBe(1);
      expect(ragged.err).toMatch(/image_embeds\[0\] must have 8 numbers/);
      const badLabel = await run('score', '--method', 'tipx', '--input', write({ ...dump, support_labels: dump.support_labels.map(() => 9) }));
      expect(badLabel.err).toMatch(/class index in 0..3/);
      expect((await run('score', '--method', 'magic', '--input', write(dump))).code).toBe(2);
      expect((await run('score', '--method', 'clip', '--input', '/nonexistent.json')).err).toMatch(/cannot read/);
    });

    it('tune prints hyperparameters and leave-one-out accuracies', async () => {
      const r = await run('tune', '--input', write({ ...dump, support_patch_embeds: Array.from({ length: 12 }, (_, i) => rows(100 + i, 4)) }));
      expect(r.code).toBe(0);
      const result = JSON.parse(r.out);
      expect(result.queries).toBe(12);
      expect(result.calip.tuned).toBe(true);
      for (const k of ['alpha', 'beta', 'gamma', 'looAccuracy']) expect(typeof result.combined[k]).toBe('number');
    });
  });
});
