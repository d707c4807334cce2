// Indexer at scale: 1,000 classes × 16 shots retrieved from a pool of 50,000 images, on
// this machine, with the time of each stage (the tiny model: the pipeline's own costs).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { renderPrompt, startGeneratorServer } from '../eval/generator-server.js';
import { COLOURS, SHAPES } from '../eval/shapes-world.js';
import { buildIndex } from '../indexer/build.js';
import { convertCheckpoint } from '../models/convert.js';
import { TINY_VARIANTS, writeTinyCheckpoint } from '../models/tiny-checkpoints.js';
import { tempDir } from '../test/helpers.js';

export async function benchIndexer(poolSize: number, classes: number): Promise<void> {
  console.log(`\n## Indexer: ${classes} classes × 16 shots from a pool of ${poolSize} images (tiny-p16, CPU, 80 templates)`);
  const ck = join(tempDir('bi-ck'), 'm'), model = join(tempDir('bi-model'), 'm');
  writeTinyCheckpoint(TINY_VARIANTS['tiny-p16'], ck);
  convertCheckpoint(ck, model);
  let t = performance.now();
  const pool = tempDir('bi-pool');
  for (let i = 0; i < poolSize; i++) {
    const dir = join(pool, String(Math.floor(i / 1000)));
    if (i % 1000 === 0) mkdirSync(dir);
    writeFileSync(join(dir, `${i}.png`), renderPrompt(`a ${COLOURS[i % 8]} ${SHAPES[(i >> 3) % 8]}`, i, 64));
  }
  console.log(`(rendering the pool: ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  const names = join(tempDir('bi-classes'), 'names.txt');
  writeFileSync(names, Array.from({ length: classes }, (_, c) => `${COLOURS[c % 8]} ${SHAPES[(c >> 3) % 8]} number ${c}`).join('\n'));
  const cache = tempDir('bi-cache');
  // A random model sends most classes to the same few pool images (so retrieval fills few
  // classes); the generator run fills all 16,000 support slots to time encoding and tuning.
  const generator = await startGeneratorServer();
  const runs: [string, { pool?: string; generator?: string }][] = [
    ['pool, first run', { pool }],
    ['pool, re-run (embeddings from the cache)', { pool }],
    ['generated support (16 per class)', { generator: generator.url }],
  ];
  for (const [run, source] of runs) {
    t = performance.now();
    // dedup 0.9999: a random tiny model sees near-duplicates everywhere; keep them to measure scale.
    const result = await buildIndex({ classes: names, model, out: join(tempDir('bi-out'), 'index'), ...source, shots: 16, dedup: 0.9999, susPrompts: 'photo', batch: 64, device: 'cpu', cacheDir: cache, maxTuneQueries: 1024, log: () => {}, progress: false });
    const total = (performance.now() - t) / 1000;
    const stages = Object.entries(result.timings).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ');
    const rate = result.timings.pool ? `; pool stage ${(poolSize / result.timings.pool).toFixed(0)} images/s incl. decode, hashing, HNSW build and retrieval` : '';
    console.log(`${run}: ${total.toFixed(1)} s total (${stages})${rate}; ${result.manifest.counts.support} support images`);
  }
  generator.server.close();
}
