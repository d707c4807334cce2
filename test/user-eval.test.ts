// `nameonly eval --index`: the user's own labelled images, scored as `classify` scores them.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode as decodePng } from 'fast-png';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { startGeneratorServer } from '../eval/generator-server.js';
import { cellColour } from '../eval/report-html.js';
import { accuracyScores, confusionMatrix, segmentationScores, type UserEvalReport } from '../eval/user-eval.js';
import { buildIndex } from '../indexer/build.js';
import { tempDir, tinyModel } from './helpers.js';

const EXAMPLES = join(import.meta.dirname, '..', 'examples');
const CHROMIUM = '/usr/bin/chromium';

async function run(args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out, err };
}

describe('eval scores, hand-worked', () => {
  it('top-1, top-5, mean per class and the confusion matrix', () => {
    // 3 images of class 0 (two right), 1 of class 1 (wrong: taken for 0), 6 classes.
    const row = (...v: number[]) => Float32Array.from(v);
    const logits = [row(9, 1, 0, 0, 0, 0), row(9, 2, 0, 0, 0, 0), row(1, 9, 0, 0, 0, 0), row(9, 0, 1, 2, 3, 4)];
    const scores = accuracyScores(logits, [0, 0, 0, 1], 6);
    expect(scores.top1).toBe(0.5);
    expect(scores.top5).toBe(0.75); // class 1 is 6th of 6 in the last row
    expect(scores.perClass.slice(0, 2)).toEqual([2 / 3, 0]);
    expect(scores.meanPerClass).toBeCloseTo(1 / 3, 12);
    expect(confusionMatrix([0, 0, 0, 1], scores.predictions, 2)).toEqual([[2, 1], [1, 0]]);
  });

  it('IoU per class over pixels that are not ignored', () => {
    // truth:     0 0 1 1 9   predicted: 0 1 1 1 0   (9 = ignored background)
    const truth = Uint16Array.from([0, 0, 1, 1, 9]), predicted = Uint16Array.from([0, 1, 1, 1, 0]);
    const s = segmentationScores([{ truth, predicted }], 10, 9);
    expect(s.perClass[0]).toBe(1 / 2); // ∩ {0}, ∪ {0, 1}
    expect(s.perClass[1]).toBe(2 / 3); // ∩ {2, 3}, ∪ {1, 2, 3}
    expect(s.mIoU).toBeCloseTo((1 / 2 + 2 / 3) / 2, 12);
    expect(s.pixelAccuracy).toBe(3 / 4);
  });
});

describe('nameonly eval --index on a labelled folder', () => {
  let indexDir: string, world: string;
  beforeAll(async () => {
    const { modelDir } = tinyModel('tiny-p16');
    const gen = await startGeneratorServer();
    indexDir = join(tempDir('eindex'), 'shapes');
    await buildIndex({ classes: join(EXAMPLES, 'shapes.txt'), model: modelDir, out: indexDir, generator: gen.url, shots: 2, dedup: 0.95, susPrompts: 'photo', batch: 8, device: 'cpu', cacheDir: tempDir('ecache'), maxTuneQueries: 64, templates: join(EXAMPLES, 'shapes-templates.txt'), log: () => {}, progress: false });
    gen.server.close();
    world = tempDir('world');
    expect((await run(['eval', '--render', world, '--count', '40'])).code).toBe(0);
  }, 120_000);

  it('accuracy of each method equals what classify answers on the same folder; the confusion matrix counts every image', { timeout: 120_000 }, async () => {
    const json = join(tempDir('report'), 'report.json');
    const r = await run(['eval', '--index', indexDir, '--images', join(world, 'images'), '--masks', join(world, 'masks'), '--json', json]);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as UserEvalReport;
    expect(report.images).toBe(40);
    for (const method of ['clip', 'calip', 'tipx', 'combined'] as const) {
      const lines = (await run(['classify', '--index', indexDir, '--method', method, '--top-k', '1', join(world, 'images')])).out.map((l) => JSON.parse(l) as { file: string; labels: { label: string }[] });
      const right = lines.filter((l) => l.file.split('/').at(-2) === l.labels[0]!.label).length;
      expect(report.methods[method]!.top1).toBeCloseTo(right / 40, 12);
    }
    expect(report.confusion.flat().reduce((a, b) => a + b, 0)).toBe(40);
    expect(report.tuner!.peeking.combined.accuracy).toBeGreaterThanOrEqual(report.tuner!.nameOnly.combined.accuracy - 1e-9); // peeking optimises on these very labels
    expect(report.segmentation!.images).toBe(40);
    expect(report.segmentation!.mIoU).toBeGreaterThan(0);
    expect(r.out.join('\n')).toMatch(/\| combined \| \d+\.\d% \|/);
  });

  it('folder names are matched case-insensitively and to synonyms; an unknown folder is a usage error naming it', async () => {
    const { mkdirSync, copyFileSync, readdirSync } = await import('node:fs');
    const images = tempDir('named');
    for (const [from, to] of [['circle', 'CIRCLE'], ['square', 'square']] as const) {
      mkdirSync(join(images, to));
      for (const f of readdirSync(join(world, 'images', from)).slice(0, 2)) copyFileSync(join(world, 'images', from, f), join(images, to, f));
    }
    expect((await run(['eval', '--index', indexDir, '--images', images])).code).toBe(0);
    mkdirSync(join(images, 'dogs'));
    const bad = await run(['eval', '--index', indexDir, '--images', images]);
    expect(bad.code).toBe(2);
    expect(bad.err.join('\n')).toMatch(/folders "dogs" match none of the index's classes/);
  });

  it.skipIf(!existsSync(CHROMIUM) && process.env.CI !== 'true')('the HTML report shows the confusion matrix as a picture (a screenshot in headless Chromium)', { timeout: 120_000 }, async () => {
    const dir = tempDir('html');
    const r = await run(['eval', '--index', indexDir, '--images', join(world, 'images'), '--html', join(dir, 'report.html'), '--json', join(dir, 'report.json')]);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as UserEvalReport;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    try {
      const page = await browser.newPage();
      await page.goto(`file://${join(dir, 'report.html')}`);
      const svg = page.locator('svg#confusion');
      const [cell, offset] = (await svg.evaluate((e) => [Number(e.getAttribute('data-cell')), Number(e.getAttribute('data-offset'))])) as [number, number];
      const shot = decodePng(await svg.screenshot());
      const pixel = (t: number, p: number) => {
        const x = offset + p * cell + 2, y = offset + t * cell + 2; // a corner of the cell, clear of its count
        const i = (y * shot.width + x) * shot.channels;
        return [shot.data[i]!, shot.data[i + 1]!, shot.data[i + 2]!];
      };
      // Every cell of the matrix has the shade of its share of the row.
      report.confusion.forEach((row, t) => {
        const total = row.reduce((a, b) => a + b, 0);
        row.forEach((count, p) => {
          const expected = cellColour(total ? count / total : 0).match(/\d+/g)!.map(Number);
          pixel(t, p).forEach((v, c) => expect(Math.abs(v - expected[c]!)).toBeLessThanOrEqual(3));
        });
      });
      // Confused pairs come with their images, inlined.
      if (report.confused.length) expect(await page.locator('.pair img').first().evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }
  });
});
