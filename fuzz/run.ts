// npm run fuzz [-- --seconds 120] [--seed 1]: hostile images through decode → preprocess →
// segment on the tiny model, each within a time bound and within its own memory estimate.
// Prints counts per outcome; exits 1 on any input over a bound or any crash.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_FILE, loadIndex } from '../core/index-format.js';
import { Pipeline } from '../core/pipeline.js';
import { openEngine } from '../engine/node.js';
import { readModelInfo } from '../models/load-model.js';
import { removeTestFiles, tinyModel } from '../test/helpers.js';
import { syntheticIndex } from '../test/worker-harness.js';
import { hostileImages } from './corpus.js';
import { runHostileImage, type Outcome } from './harness.js';

/** Per-input bounds: time on the tiny model, and memory over the header's estimate. */
export const TIME_BOUND_MS = 3000;
export const MEMORY_SLACK_BYTES = 2 * 2 ** 20;

async function main(): Promise<number> {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const seconds = arg('seconds', 120), seed = arg('seed', 1);
  const { modelDir } = tinyModel('tiny-p16');
  const indexDir = syntheticIndex(modelDir, 8, 2);
  const index = await loadIndex(JSON.parse(readFileSync(join(indexDir, 'manifest.json'), 'utf8')), readFileSync(join(indexDir, DATA_FILE)));
  const pipeline = new Pipeline(await openEngine(modelDir, readModelInfo(modelDir)), index);
  const counts = new Map<Outcome, number>();
  const failures: string[] = [];
  let inputs = 0, slowest = 0;
  const end = Date.now() + seconds * 1000;
  for (let round = 0; Date.now() < end; round++) {
    for (const image of hostileImages(200, seed * 100_003 + round)) {
      inputs++;
      try {
        const r = await runHostileImage(pipeline, image.bytes);
        counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
        slowest = Math.max(slowest, r.ms);
        if (r.ms > TIME_BOUND_MS) failures.push(`${image.name}: ${r.ms.toFixed(0)} ms`);
        if (r.allocationBound !== undefined && r.allocatedBytes > r.allocationBound + MEMORY_SLACK_BYTES) failures.push(`${image.name}: allocated ${r.allocatedBytes} bytes, bound ${r.allocationBound}`);
      } catch (e) {
        failures.push(`${image.name}: crashed: ${(e as Error).message}`);
      }
    }
    process.stderr.write(`\r${inputs} inputs, ${failures.length} over a bound`);
  }
  process.stderr.write('\n');
  console.log(`fuzz: ${inputs} hostile images in ${seconds} s (seed ${seed}); slowest ${slowest.toFixed(0)} ms (bound ${TIME_BOUND_MS})`);
  for (const [outcome, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`  ${outcome.padEnd(20)} ${n}`);
  for (const f of failures.slice(0, 20)) console.log(`  OVER A BOUND: ${f}`);
  console.log(failures.length === 0 ? 'fuzz: every input within its bounds' : `fuzz: ${failures.length} inputs over a bound`);
  return failures.length === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((code) => {
    removeTestFiles();
    process.exit(code);
  }, (e) => {
    removeTestFiles();
    console.error(e);
    process.exit(1);
  });
}
