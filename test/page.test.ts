// The web page in real headless Chromium (Debian's chromium, driven by playwright-core):
// upload an image, read the rendered top-k, see the segmentation overlay arrive.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPrompt, startGeneratorServer } from '../eval/generator-server.js';
import { buildIndex } from '../indexer/build.js';
import { tempDir, tinyModel } from './helpers.js';
import { startWorker, type WorkerHandle } from './worker-harness.js';

const CHROMIUM = '/usr/bin/chromium';
// CI installs chromium (.ci/run); a developer machine without it skips this file, CI never does.
const available = existsSync(CHROMIUM) || process.env.CI === 'true';
if (!available) console.warn(`web page test SKIPPED: no ${CHROMIUM} (apt-get install chromium; in CI it is installed and this test never skips)`);

describe.skipIf(!available)('web page in Chromium', () => {
  let worker: WorkerHandle;
  let browser: Browser;
  beforeAll(async () => {
    const { modelDir } = tinyModel('tiny-p16');
    const gen = await startGeneratorServer();
    const out = join(tempDir('pindex'), 'tiny');
    const examples = join(import.meta.dirname, '..', 'examples');
    await buildIndex({ classes: join(examples, 'shapes.txt'), model: modelDir, out, generator: gen.url, shots: 2, dedup: 0.95, susPrompts: 'photo', batch: 8, device: 'cpu', cacheDir: tempDir('pcache'), maxTuneQueries: 64, templates: join(examples, 'shapes-templates.txt'), log: () => {}, progress: false });
    gen.server.close();
    worker = await startWorker({}, true, false, undefined, 'bound');
    await worker.publish(out, modelDir);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await worker?.dispose();
  });

  it('uploads an image and shows the top-k with bars, timings and a segmentation overlay', { timeout: 120_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(`${worker.url}/`);
    // The page fills this in once /v1/classes answers, which waits for the isolate to load the
    // model and index: seconds on a busy machine, so no 1-second default poll.
    await expect.poll(() => page.textContent('#about'), { timeout: 60_000 }).toMatch(/8 classes: circle, square/);
    expect(await page.isHidden('#examples')).toBe(true); // another model's world is the user's to bring
    const file = join(tempDir('upload'), 'star.png');
    writeFileSync(file, renderPrompt('a large red star', 3, 64));
    await page.setInputFiles('#file', file);
    await page.waitForSelector('tr.label');
    const rows = await page.$$eval('tr.label', (trs) => trs.map((tr) => [tr.children[0]!.textContent, tr.querySelector('.score')!.textContent]));
    expect(rows).toHaveLength(5);
    const names = ['circle', 'square', 'triangle', 'star', 'cross', 'ring', 'heart', 'diamond'];
    for (const [label, score] of rows) {
      expect(names).toContain(label);
      expect(score).toMatch(/^\d+\.\d %$/);
    }
    expect(await page.textContent('#timings')).toMatch(/(clip|calip|tipx|combined) · decode \d+ ms .* total \d+ ms/);
    expect(await page.textContent('#answer')).toMatch(/^(none of these \(top guesses below\)|circle|square|triangle|star|cross|ring|heart|diamond) calibrated probabilities$/);
    await page.waitForFunction(() => (document.getElementById('overlay') as HTMLImageElement).complete && (document.getElementById('overlay') as HTMLImageElement).naturalWidth === 64);
    expect(await page.textContent('#legend')).toMatch(/segmentation overlay:\s+circle,\s+square/);
    // The overlay can be hidden and its opacity changed.
    const opacity = () => page.$eval('#overlay', (img) => getComputedStyle(img).opacity);
    expect(await opacity()).toBe('0.55');
    await page.fill('#opacity', '20');
    expect(await opacity()).toBe('0.2');
    await page.uncheck('#show');
    expect(await opacity()).toBe('0');
    await page.check('#show');
    expect(await opacity()).toBe('0.2');
    expect(await page.textContent('#error')).toBe('');
    // An error after a result clears it: what is shown is always the last image's.
    const bad = join(tempDir('upload'), 'not-an-image.png');
    writeFileSync(bad, 'hello, I am text');
    await page.setInputFiles('#file', bad);
    await expect.poll(() => page.textContent('#error'), { timeout: 30_000 }).toMatch(/undecodable_image|unsupported_media_type/);
    expect(await page.$$('tr.label')).toHaveLength(0);
    expect(await page.textContent('#answer')).toBe('');
  });

  it('labels typed on the page are classified and segmented through the text Worker, alone or with the index classes', { timeout: 120_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(`${worker.url}/`);
    await expect.poll(() => page.textContent('#about'), { timeout: 60_000 }).toMatch(/8 classes/);
    const file = join(tempDir('upload'), 'ring.png');
    writeFileSync(file, renderPrompt('a blue ring', 4, 64));
    await page.fill('#labels-in', 'receipt, invoice, menu');
    await page.setInputFiles('#file', file);
    await page.waitForSelector('tr.label');
    const labels = () => page.$$eval('tr.label', (trs) => trs.map((tr) => tr.children[0]!.textContent!).sort());
    expect(await labels()).toEqual(['invoice', 'menu', 'receipt']);
    expect(await page.textContent('#answer')).toMatch(/raw softmax/);
    expect(await page.textContent('#timings')).toMatch(/labels \d+ ms \(3 embedded, 0 cached\)/);
    await expect.poll(() => page.textContent('#legend'), { timeout: 30_000 }).toMatch(/segmentation overlay:\s+receipt,\s+invoice,\s+menu$/);
    // Again, with the index's classes: the labels come from the cache now.
    await page.check('#with-index');
    await page.fill('#labels-in', 'menu');
    const again = join(tempDir('upload'), 'ring-again.png'); // another file: the same one fires no change
    writeFileSync(again, renderPrompt('a blue ring', 4, 64));
    await page.setInputFiles('#file', again);
    await expect.poll(() => page.textContent('#timings'), { timeout: 30_000 }).toMatch(/\(0 embedded, 1 cached\)/);
    await expect.poll(() => page.textContent('#legend'), { timeout: 30_000 }).toMatch(/circle,.*diamond,\s+menu$/);
  });
});

describe.skipIf(!available)('web page examples for the embedded model’s world', () => {
  it('a model named shapes-clip gets six clickable scenes of its world; a click classifies one', { timeout: 180_000 }, async () => {
    // The tiny checkpoint under the embedded model's name (convert names a model after its folder).
    const { cpSync } = await import('node:fs');
    const { convertCheckpoint } = await import('../models/convert.js');
    const ck = join(tempDir('named'), 'shapes-clip');
    cpSync(tinyModel('tiny-p16').checkpointDir, ck, { recursive: true });
    const modelDir = join(tempDir('named-model'), 'model');
    convertCheckpoint(ck, modelDir);
    const out = join(tempDir('eindex'), 'tiny');
    const examples = join(import.meta.dirname, '..', 'examples');
    await buildIndex({ classes: join(examples, 'shapes.txt'), model: modelDir, out, shots: 1, dedup: 0.95, susPrompts: 'photo', batch: 8, device: 'cpu', cacheDir: tempDir('ecache'), maxTuneQueries: 8, templates: join(examples, 'shapes-templates.txt'), log: () => {}, progress: false });
    const worker = await startWorker({}, true);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    try {
      await worker.publish(out, modelDir);
      const page = await browser.newPage();
      await page.goto(`${worker.url}/`);
      await page.waitForSelector('#examples:not([hidden]) img.example', { timeout: 60_000 });
      expect(await page.$$('img.example')).toHaveLength(6);
      await page.click('img.example >> nth=2');
      await page.waitForSelector('tr.label', { timeout: 60_000 });
      expect(await page.$$('tr.label')).toHaveLength(5);
      expect(await page.textContent('#error')).toBe('');
    } finally {
      await browser.close();
      await worker.dispose();
    }
  });
});
