import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageEncoder } from '../../core/encoders.js';
import { DATA_FILE, loadIndex } from '../../core/index-format.js';
import { Pipeline } from '../../core/pipeline.js';
import { startGeneratorServer } from '../../eval/generator-server.js';
import { SHAPES_CHECKPOINT } from '../../eval/run.js';
import { randomScene } from '../../eval/shapes-world.js';
import { buildIndex } from '../../indexer/build.js';
import { convertCheckpoint } from '../../models/convert.js';
import { ortFor, readModelInfo } from '../../models/load-model.js';
import { parse, type Command } from '../args.js';

const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;

export const start: Command = {
  name: 'start',
  summary: 'the demo: build the embedded shapes-world default and classify a few fresh images',
  usage: `nameonly start [--model <checkpoint-dir>] [--classes names.txt] [--work .nameonly/default]
   (also: npm start)

With no arguments: converts the embedded shapes-clip (a small CLIP trained on a synthetic
world of coloured shapes — it knows nothing else), builds an index of the eight shapes with
16 generated support images per class, then classifies and segments fresh renders through the
same pipeline the Worker serves. --model points it at a real HF CLIP checkpoint folder.`,
  async run(argv, io) {
    const { values } = parse(argv, { model: { type: 'string' }, classes: { type: 'string' }, work: { type: 'string' } });
    const work = values.work ?? join('.nameonly', 'default');
    const checkpoint = values.model ?? SHAPES_CHECKPOINT;
    const isDefault = !values.model;
    io.err(isDefault ? 'model: shapes-clip (embedded default) — a small CLIP trained on a synthetic world of coloured shapes: it knows circle, square, triangle, star, cross, ring, heart, diamond in eight colours, nothing else.' : `model: ${checkpoint}`);
    const modelDir = join(work, 'model');
    convertCheckpoint(checkpoint, modelDir, io.err);
    const generator = isDefault ? await startGeneratorServer() : undefined;
    const indexDir = join(work, 'index');
    try {
      await buildIndex({
        classes: values.classes ?? join(EXAMPLES, 'shapes.txt'),
        model: modelDir,
        out: indexDir,
        templates: isDefault ? join(EXAMPLES, 'shapes-templates.txt') : undefined,
        generator: generator?.url,
        shots: 16,
        dedup: 0.95,
        susPrompts: 'photo',
        batch: 32,
        device: 'cpu',
        cacheDir: join(work, 'cache'),
        maxTuneQueries: 1024,
        log: io.err,
      });
    } finally {
      generator?.server.close();
    }
    if (!existsSync(join(indexDir, 'manifest.json'))) return 1;
    const info = readModelInfo(modelDir);
    const encoder = await ImageEncoder.create(await ortFor('wasm'), readFileSync(join(modelDir, info.files.imageEncoderQuantized)), info);
    const index = await loadIndex(JSON.parse(readFileSync(join(indexDir, 'manifest.json'), 'utf8')), readFileSync(join(indexDir, DATA_FILE)));
    const pipeline = new Pipeline(encoder, index);
    io.out(`\nClassifying fresh renders with the Worker's pipeline (uint8 encoder, WASM), method ${pipeline.resolveMethod('auto')}:`);
    let correct = 0;
    for (let i = 0; i < 8; i++) {
      const scene = randomScene(4242 + i, 1);
      const truth = `${scene.objects[0]!.colour} ${scene.objects[0]!.shape}`;
      const [features] = await pipeline.features([scene.image]);
      const top = pipeline.topK(pipeline.logits(features!, pipeline.resolveMethod('auto')), 3);
      if (truth.endsWith(top[0]!.label)) correct++;
      io.out(`  ${`${truth} (${scene.background})`.padEnd(30)} -> ${top.map((t) => `${t.label} ${(100 * t.score).toFixed(0)}%`).join(', ')}`);
    }
    io.out(`  ${correct}/8 right (the full accuracy tables: npm run eval)`);
    io.out('\nServe it over HTTP: the Worker (wrangler dev) is the next milestone; until then this command and `npm run eval` run the same pipeline in Node.');
    await encoder.release();
    return 0;
  },
};
