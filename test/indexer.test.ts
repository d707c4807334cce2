import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { encode as encodePng } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { DATA_FILE, loadIndex } from '../core/index-format.js';
import { matMulABt, matrix, normalizeRows } from '../core/linalg.js';
import { renderPrompt, startGeneratorServer } from '../eval/generator-server.js';
import { buildIndex, type BuildOptions } from '../indexer/build.js';
import { workersAiGenerator } from '../indexer/generator.js';
import { parseClassList } from '../indexer/inputs.js';
import { retrieve, VectorIndex } from '../indexer/retrieve.js';
import schema from '../core/index-manifest.schema.json' with { type: 'json' };
import { randomUnitRows, tempDir, tinyModel } from './helpers.js';

const validateManifest = new Ajv2020.default({ allErrors: true, validateFormats: false }).compile(schema);
const quiet = () => {};

let generator: { server: Server; url: string };
beforeAll(async () => {
  generator = await startGeneratorServer();
});
afterAll(() => generator.server.close());

function classFile(text = 'red circle | crimson circle\nblue square\n# a comment\n\ngreen star\n'): string {
  const path = join(tempDir('classes'), 'names.txt');
  writeFileSync(path, text);
  return path;
}

function options(extra: Partial<BuildOptions>): BuildOptions {
  const work = tempDir('index');
  return {
    classes: classFile(),
    model: tinyModel('tiny-p16').modelDir,
    out: join(work, 'out'),
    shots: 3,
    dedup: 0.95,
    susPrompts: 'photo',
    batch: 4,
    device: 'cpu',
    cacheDir: join(work, 'cache'),
    maxTuneQueries: 256,
    templates: undefined,
    log: quiet,
    ...extra,
  };
}

async function readIndex(dir: string) {
  return loadIndex(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')), readFileSync(join(dir, DATA_FILE)));
}

function writePool(count: number): string {
  const dir = tempDir('pool');
  mkdirSync(join(dir, 'nested'));
  const prompts = ['a red circle', 'a blue square', 'a green star'];
  for (let i = 0; i < count; i++) writeFileSync(join(dir, i % 2 ? 'nested' : '', `img${i}.png`), renderPrompt(prompts[i % 3]!, i, 64));
  writeFileSync(join(dir, 'broken.png'), Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 1, 2, 3));
  writeFileSync(join(dir, 'notes.txt'), 'not an image, not listed');
  return dir;
}

describe('index building on the tiny model', () => {
  it('(d) no support set: text classifier, synonyms as segmentation queries, default hyperparameters', async () => {
    const o = options({});
    const result = await buildIndex(o);
    expect(validateManifest(result.manifest), JSON.stringify(validateManifest.errors)).toBe(true);
    const index = await readIndex(o.out);
    expect(index.manifest.classes.map((c) => c.name)).toEqual(['red circle', 'blue square', 'green star']);
    expect(index.manifest.counts).toEqual({ classes: 3, queries: 4, support: 0 });
    expect(Array.from(index.queryClass)).toEqual([0, 0, 1, 2]);
    expect(index.support).toBeNull();
    expect(index.manifest.hyperparameters).toMatchObject({ source: 'defaults', params: { combined: { alpha: 0, gamma: 0, beta2: 1.12, beta3: 0.02 } } });
    expect(index.manifest.prompts.templates).toHaveLength(80);
    for (let c = 0; c < 3; c++) expect(Math.hypot(...index.textClassifier.data.subarray(c * 24, (c + 1) * 24))).toBeCloseTo(1, 5);
  });

  it('(b) generated support set from a stub generator server, resumable from its cache', async () => {
    const o = options({ generator: generator.url });
    const first = await buildIndex(o);
    expect(validateManifest(first.manifest), JSON.stringify(validateManifest.errors)).toBe(true);
    const index = await readIndex(o.out);
    expect(index.manifest.counts.support).toBe(9);
    expect(index.manifest.support!.perClass).toEqual([3, 3, 3]);
    const src = index.manifest.support!.sources[0]!;
    expect(src).toMatchObject({ kind: 'generated', prompt: 'A photo of a red circle.', label: 0 });
    expect(index.manifest.hyperparameters.source).toBe('leave-one-out');
    expect(index.support!.logNorm).toHaveLength(9);
    const lines: string[] = [];
    await buildIndex({ ...o, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/generation: 9 images \(9 from cache\)/);
  });

  it('an interrupted generation resumes from its cache', async () => {
    // A generator that dies after four images, then comes back.
    const { createServer } = await import('node:http');
    let served = 0, alive = true;
    const flaky = createServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      if (!alive || served >= 4) return void res.writeHead(503).end('down');
      served++;
      const upstream = await fetch(generator.url, { method: 'POST', body });
      res.writeHead(upstream.status, { 'content-type': 'image/png' }).end(Buffer.from(await upstream.arrayBuffer()));
    }).listen(0, '127.0.0.1');
    await new Promise((r) => flaky.once('listening', r));
    const url = `http://127.0.0.1:${(flaky.address() as { port: number }).port}/gen`;
    const o = options({ generator: url });
    await expect(buildIndex(o)).rejects.toThrow(/HTTP 503/);
    expect(existsSync(o.out)).toBe(false);
    served = -100; // back up
    const lines: string[] = [];
    await buildIndex({ ...o, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/generation: 9 images \(4 from cache\)/);
    alive = false;
    flaky.close();
  });

  it('(a) pool folder: recursive listing, corrupt files skipped and reported, incremental embedding cache', async () => {
    const pool = writePool(12);
    const o = options({ pool });
    const result = await buildIndex(o);
    expect(result.skipped.map((s) => s.path)).toEqual([join(pool, 'broken.png')]);
    const index = await readIndex(o.out);
    const sources = index.manifest.support!.sources;
    expect(sources.every((s) => s.kind === 'pool')).toBe(true);
    expect(new Set(sources.map((s) => ('path' in s ? s.path : ''))).size).toBe(sources.length); // one class per image
    const lines: string[] = [];
    writeFileSync(join(pool, 'extra.png'), renderPrompt('a green star', 99, 64));
    await buildIndex({ ...o, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/pool: 13 images \(12 from cache, 1 skipped\)/);
  });

  it('(c) user shots, mixed with generation; the manifest records each source', async () => {
    const shots = tempDir('shots');
    for (const [folder, prompt] of [['red circle', 'a red circle'], ['blue_square', 'a blue square']] as const) {
      mkdirSync(join(shots, folder));
      for (let k = 0; k < 2; k++) writeFileSync(join(shots, folder, `${k}.png`), renderPrompt(prompt, k, 64));
    }
    const o = options({ shotsDir: shots, generator: generator.url, shots: 1 });
    await buildIndex(o);
    const index = await readIndex(o.out);
    expect(index.manifest.support!.perClass).toEqual([3, 3, 1]);
    expect(index.manifest.support!.sources.filter((s) => s.kind === 'shots')).toHaveLength(4);
  });

  it('descriptions join the classifier and, with --sus-prompts descriptions, drive generation', async () => {
    const dir = tempDir('desc');
    const descriptions = join(dir, 'descriptions.json');
    writeFileSync(descriptions, JSON.stringify({ 'red circle': ['a round red disc'], 'blue square': ['a blue box', 'a square of blue'], 'green star': ['a green five-pointed star'] }));
    const templates = join(dir, 'templates.txt');
    writeFileSync(templates, 'a photo of a {}.\n# comment\na {}.\n');
    const plain = options({ templates });
    await buildIndex(plain);
    const o = options({ templates, descriptions, susPrompts: 'descriptions', generator: generator.url, shots: 2 });
    await buildIndex(o);
    const [a, b] = [await readIndex(plain.out), await readIndex(o.out)];
    expect(b.manifest.prompts).toEqual({ templates: ['a photo of a {}.', 'a {}.'], descriptions: 4 });
    expect(Array.from(a.textClassifier.data)).not.toEqual(Array.from(b.textClassifier.data));
    expect(Array.from(a.queries.data)).toEqual(Array.from(b.queries.data)); // segmentation queries: names × templates only
    const prompts = b.manifest.support!.sources.map((s) => ('prompt' in s ? s.prompt : ''));
    expect(prompts).toEqual(['a round red disc', 'a round red disc', 'a blue box', 'a square of blue', 'a green five-pointed star', 'a green five-pointed star']);
    writeFileSync(templates, 'a photo of a thing\n');
    await expect(buildIndex(options({ templates }))).rejects.toThrow(/template 1 .* has no \{\}/);
    writeFileSync(descriptions, JSON.stringify({ 'purple dog': ['x'] }));
    await expect(buildIndex(options({ descriptions }))).rejects.toThrow(/"purple dog" is not in the class list/);
  });

  it('verify detects a flipped byte and a model mismatch; the CLI exits 1', async () => {
    const o = options({ generator: generator.url, shots: 1 });
    await buildIndex(o);
    const io = { out: quiet, err: quiet };
    let said = '';
    expect(await main(['verify', o.out, '--model', tinyModel('tiny-p16').modelDir], { out: (l) => (said += l), err: quiet })).toBe(0);
    // The engine against the fp32 graph, as verify reports it.
    const cos = Number(/image_embeds cosine (\d\.\d+)/.exec(said)?.[1]);
    expect(cos).toBeGreaterThanOrEqual(0.999);
    expect(cos).toBeLessThanOrEqual(1);
    expect(await main(['verify', o.out, '--model', tinyModel('tiny-p8-bf16').modelDir], io)).toBe(1);
    const data = readFileSync(join(o.out, DATA_FILE));
    data[data.length - 3]! ^= 0xff;
    writeFileSync(join(o.out, DATA_FILE), data);
    await expect(readIndex(o.out)).rejects.toThrow(/sha256/);
    expect(await main(['verify', o.out], io)).toBe(1);
  });
});

describe('index building refuses bad input and leaves nothing partial', () => {
  const failures: [string, () => Partial<BuildOptions>, RegExp][] = [
    ['unreadable class file', () => ({ classes: '/nonexistent/names.txt' }), /cannot read class list/],
    ['duplicate class', () => ({ classes: classFile('cat\ndog\nCat\n') }), /names\.txt:3: "Cat" already appears on line 1/],
    ['missing model', () => ({ model: tempDir('nomodel') }), /no model\.json/],
    ['empty pool', () => ({ pool: tempDir('empty') }), /has no images/],
    ['generator down', () => ({ generator: 'http://127.0.0.1:9/generate' }), /not reachable/],
    ['generator refuses the prompt', () => ({ classes: classFile('dog\ncat\n'), generator: generator.url }), /HTTP 422.*cannot draw/],
  ];
  it.each(failures)('%s', async (_name, extra, message) => {
    const o = options(extra());
    await expect(buildIndex(o)).rejects.toThrow(message);
    expect(existsSync(o.out)).toBe(false);
    expect(readdirSync(join(o.out, '..')).filter((f) => f.startsWith('out'))).toEqual([]);
  });

  it('generator returning non-images', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => res.end('<html>oops</html>')).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as { port: number }).port;
    const o = options({ generator: `http://127.0.0.1:${port}/` });
    await expect(buildIndex(o)).rejects.toThrow(/not a PNG or JPEG/);
    server.close();
    expect(existsSync(o.out)).toBe(false);
  });

  it('a failed rebuild keeps the previous index intact', async () => {
    const o = options({});
    await buildIndex(o);
    const before = readFileSync(join(o.out, 'manifest.json'), 'utf8');
    await expect(buildIndex({ ...o, generator: 'http://127.0.0.1:9/x' })).rejects.toThrow();
    expect(readFileSync(join(o.out, 'manifest.json'), 'utf8')).toBe(before);
  });

  it('--out is swapped atomically: a link to a version folder, the previous version kept, leftovers of a killed run cleared, a foreign folder refused', async () => {
    const o = options({});
    // An index written by an earlier nameonly (a real folder) is adopted.
    await buildIndex(o);
    const v1 = JSON.parse(readFileSync(join(o.out, 'manifest.json'), 'utf8')).version as string;
    const versions = `${o.out}.versions`;
    const legacy = readFileSync(join(versions, v1, DATA_FILE));
    rmSync(o.out);
    renameSync(join(versions, v1), o.out); // the old layout: a real folder at --out
    mkdirSync(join(versions, 'tmp-99999999-1')); // what a run killed mid-write leaves
    await new Promise((r) => setTimeout(r, 1100)); // versions are named by the second
    await buildIndex(o);
    expect(lstatSync(o.out).isSymbolicLink()).toBe(true);
    const v2 = JSON.parse(readFileSync(join(o.out, 'manifest.json'), 'utf8')).version as string;
    expect(readdirSync(versions).sort()).toEqual([v1, v2].sort());
    expect(readFileSync(join(versions, v1, DATA_FILE))).toEqual(legacy);
    await new Promise((r) => setTimeout(r, 1100));
    await buildIndex(o);
    expect(readdirSync(versions)).toHaveLength(2); // the newest and the one it replaced
    expect(readdirSync(versions)).toContain(v2);
    const foreign = join(tempDir('foreign-out'), 'mine');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    await expect(buildIndex({ ...o, out: foreign })).rejects.toThrow(/exists and is not an index nameonly wrote; refusing to replace it/);
    expect(readFileSync(join(foreign, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('class list: blank lines, comments, synonyms, empty and over-long names', () => {
    expect(parseClassList('a | b\n\n# c\nd # trailing\n')).toEqual([{ name: 'a', synonyms: ['b'] }, { name: 'd', synonyms: [] }]);
    expect(() => parseClassList('a\n | b\n', 'x')).toThrow(/x:2: empty class name/);
    expect(() => parseClassList(`a\n${'z'.repeat(101)}\n`, 'x')).toThrow(/x:2: .*longer than 100/);
    expect(() => parseClassList('only\n', 'x')).toThrow(/at least two classes/);
  });

  it('the Workers AI adapter sends the prompt with the token from the environment and never names it in errors', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const png = encodePng({ width: 1, height: 1, data: Uint8Array.of(1, 2, 3), channels: 3, depth: 8 });
    const ok = workersAiGenerator('@cf/x/y', { CLOUDFLARE_ACCOUNT_ID: 'acc', CLOUDFLARE_API_TOKEN: 'secret-token' }, async (url, init) => {
      calls.push({ url: String(url), init: init! });
      return new Response(Buffer.from(png));
    });
    expect(await ok.generate({ prompt: 'A photo of a cat.', seed: 7, width: 512, height: 512 })).toEqual(png);
    expect(calls[0]!.url).toBe('https://api.cloudflare.com/client/v4/accounts/acc/ai/run/@cf/x/y');
    expect((calls[0]!.init.headers as Record<string, string>).authorization).toBe('Bearer secret-token');
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ prompt: 'A photo of a cat.', seed: 7, width: 512, height: 512 });
    expect(ok.name).not.toContain('secret');
    const denied = workersAiGenerator('@cf/x/y', { CLOUDFLARE_ACCOUNT_ID: 'acc', CLOUDFLARE_API_TOKEN: 'secret-token' }, async () => new Response('denied', { status: 403 }));
    await expect(denied.generate({ prompt: 'p', seed: 1, width: 8, height: 8 })).rejects.toThrow(/HTTP 403/);
    await denied.generate({ prompt: 'p', seed: 1, width: 8, height: 8 }).catch((e: Error) => expect(e.message).not.toContain('secret-token'));
    expect(() => workersAiGenerator('@cf/x/y', {})).toThrow(/CLOUDFLARE_ACCOUNT_ID/);
  });
});

describe('retrieval', () => {
  it('HNSW recall against exact search on planted pool embeddings, with exclusive assignment', () => {
    const C = 20, per = 30, D = 32;
    const centers = randomUnitRows(C, D, 7);
    const noise = randomUnitRows(C * per, D, 8);
    const data = new Float32Array(C * per * D);
    for (let i = 0; i < C * per; i++) for (let d = 0; d < D; d++) data[i * D + d] = centers.data[(i % C) * D + d]! + 0.6 * noise.data[i * D + d]!;
    const pool = normalizeRows(matrix(data, C * per, D));
    const found = retrieve(new VectorIndex(pool), centers, { shots: 8, dedupThreshold: 0.999 });
    // Exact: per class, the 8 most similar images among those whose best class it is.
    const sims = matMulABt(pool, centers);
    let hits = 0;
    for (let c = 0; c < C; c++) {
      const mine = [...Array(C * per).keys()].filter((i) => {
        const row = sims.data.subarray(i * C, (i + 1) * C);
        return row.indexOf(Math.max(...row)) === c;
      });
      const exact = mine.sort((a, b) => sims.data[b * C + c]! - sims.data[a * C + c]!).slice(0, 8);
      hits += found.perClass[c]!.filter((i) => exact.includes(i)).length;
      expect(found.perClass[c]!.every((i) => i % C === c)).toBe(true); // planted neighbours
    }
    expect(hits / (C * 8)).toBeGreaterThanOrEqual(0.95);
    const all = found.perClass.flat();
    expect(new Set(all).size).toBe(all.length);
  });

  it('drops near-duplicates and reports a class that gets fewer than K', () => {
    const D = 8;
    const base = randomUnitRows(2, D, 3);
    // Class 0's region holds one image and four exact copies of it; class 1 has five distinct images.
    const rows: number[] = [];
    for (let k = 0; k < 5; k++) rows.push(...base.data.subarray(0, D));
    const noise = randomUnitRows(5, D, 4);
    for (let k = 0; k < 5; k++) rows.push(...Array.from(base.data.subarray(D, 2 * D), (v, d) => v + 0.3 * noise.data[k * D + d]!));
    const pool = normalizeRows(matrix(Float32Array.from(rows), 10, D));
    const found = retrieve(new VectorIndex(pool), base, { shots: 3, dedupThreshold: 0.95 });
    expect(found.perClass[0]).toHaveLength(1);
    expect(found.perClass[1]).toHaveLength(3);
  });
});

describe('npm run index alias', () => {
  it('the index command builds through the CLI and prints a summary', async () => {
    const o = options({});
    const err: string[] = [];
    const code = await main(['index', '--classes', o.classes, '--model', o.model, '--out', o.out, '--cache', o.cacheDir], { out: quiet, err: (l) => err.push(l) });
    expect(code).toBe(0);
    expect(err.join('\n')).toMatch(/index out .*3 classes/);
    expect(await main(['index', '--model', o.model], { out: quiet, err: quiet })).toBe(2); // no --classes
    expect(await main(['index', '--classes', o.classes, '--model', o.model, '--out', o.out, '--device', 'tpu'], { out: quiet, err: quiet })).toBe(2);
  });

  it("the design card's command: --classes alone builds indexes/<stem> with the embedded model, and says what to do next", { timeout: 120_000 }, async () => {
    const work = tempDir('design-card');
    writeFileSync(join(work, 'my-shapes.txt'), 'circle\nsquare\nstar\n');
    const here = process.cwd();
    process.chdir(work);
    try {
      const err: string[] = [];
      expect(await main(['index', '--classes', 'my-shapes.txt'], { out: quiet, err: (l) => err.push(l) })).toBe(0);
      const manifest = JSON.parse(readFileSync(join(work, 'indexes', 'my-shapes', 'manifest.json'), 'utf8'));
      expect(manifest.name).toBe('my-shapes');
      expect(manifest.model.name).toBe('shapes-clip');
      expect(manifest.model.path).toBe(join(work, '.nameonly', 'models', 'shapes-clip'));
      expect(err.join('\n')).toMatch(/index written to indexes\/my-shapes\. Next:\n\s+nameonly classify --index indexes\/my-shapes/);
      // A second run reuses the converted model and replaces the index atomically.
      const again: string[] = [];
      expect(await main(['index', '--classes', 'my-shapes.txt'], { out: quiet, err: (l) => again.push(l) })).toBe(0);
      expect(again.join('\n')).not.toMatch(/converting the embedded default model/);
    } finally {
      process.chdir(here);
    }
  });
});

describe('publish temporary folders', () => {
  it('are removed when the process is stopped by a signal, and swept after a SIGKILL', async () => {
    const { spawnSync } = await import('node:child_process');
    const { sweepStalePublishDirs } = await import('../indexer/publish.js');
    const script = join(tempDir('publish-signal'), 'run.mts');
    writeFileSync(script, `import { publishTempDir } from ${JSON.stringify(join(import.meta.dirname, '../indexer/publish.ts'))};
const dir = publishTempDir();
process.stdout.write(dir + '\\n');
setTimeout(() => process.kill(process.pid, 'SIGTERM'), 50);
setTimeout(() => {}, 10_000);`);
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
    expect(run.signal).toBe('SIGTERM');
    const dir = run.stdout.trim();
    expect(dir).toMatch(/nameonly-publish-\d+-/);
    expect(existsSync(dir)).toBe(false);
    // A SIGKILLed publish cannot clean up: the next one sweeps folders of processes that are gone.
    const root = tempDir('sweep');
    mkdirSync(join(root, 'nameonly-publish-99999999-abc'));
    mkdirSync(join(root, `nameonly-publish-${process.pid}-live`));
    expect(sweepStalePublishDirs(root)).toEqual(['nameonly-publish-99999999-abc']);
    expect(readdirSync(root)).toEqual([`nameonly-publish-${process.pid}-live`]);
  });
});
