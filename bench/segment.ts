// Segmentation latency and memory against the number of classes (npm run bench -- segment):
// a TinyCLIP-shaped tower (224 px, patch 16) on the engine, a 320×240 image at the default size
// (6 windows), synthetic indexes of 8, 100 and 1,000 classes; CSA, then CSA + PAMR.
import { convertCheckpoint } from '../models/convert.js';
import { TINY_VARIANTS, writeTinyCheckpoint } from '../models/tiny-checkpoints.js';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { DATA_FILE, loadIndex } from '../core/index-format.js';
import { Pipeline } from '../core/pipeline.js';
import { PAMR_DEFAULTS } from '../core/scoring/pamr.js';
import { segmentWork } from '../core/work-budget.js';
import { openEngine } from '../engine/node.js';
import { readModelInfo } from '../models/load-model.js';
import { tempDir } from '../test/helpers.js';
import { syntheticIndex } from '../test/worker-harness.js';
import { quantile } from './hostile-load.js';

export async function benchSegment(): Promise<void> {
  const dir = tempDir('bench-segment');
  writeTinyCheckpoint(TINY_VARIANTS['tinyclip-shaped'], join(dir, 'ck'));
  convertCheckpoint(join(dir, 'ck'), join(dir, 'model'));
  const info = readModelInfo(join(dir, 'model'));
  const encoder = await openEngine(join(dir, 'model'), info);
  const image = { width: 320, height: 240, data: Uint8Array.from({ length: 320 * 240 * 3 }, (_, i) => (i * 7 + (i >> 9)) % 256) };
  const MB = 2 ** 20;
  console.log(`\nsegmentation of a 320×240 image, TinyCLIP-shaped tower on the engine (${encoder.kernel}), default size (6 windows)`);
  console.log('| classes | CSA p50 | CSA + PAMR p50 | request memory estimate (CSA, json) | with PAMR |');
  console.log('|---|---|---|---|---|');
  for (const classes of [8, 100, 1000]) {
    const indexDir = syntheticIndex(join(dir, 'model'), classes, 1);
    const index = await loadIndex(JSON.parse(readFileSync(join(indexDir, 'manifest.json'), 'utf8')), readFileSync(join(indexDir, DATA_FILE)));
    const pipeline = new Pipeline(encoder, index);
    const time = async (refine?: typeof PAMR_DEFAULTS) => {
      const runs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await pipeline.segment(image, { refine });
        runs.push(performance.now() - t);
      }
      return quantile(runs, 0.5);
    };
    const header = { format: 'png' as const, width: 320, height: 240, decodeBytes: 320 * 240 * 3 };
    const plain = segmentWork(header, info, { queries: classes, format: 'json' }), refined = segmentWork(header, info, { queries: classes, format: 'json', refine: PAMR_DEFAULTS });
    console.log(`| ${classes} | ${(await time()).toFixed(0)} ms | ${(await time(PAMR_DEFAULTS)).toFixed(0)} ms | ${(plain.bytes / MB).toFixed(1)} MB | ${(refined.bytes / MB).toFixed(1)} MB |`);
  }
}
