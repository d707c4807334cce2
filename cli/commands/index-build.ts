import { basename, join } from 'node:path';
import { buildIndex } from '../../indexer/build.js';
import { parse, positiveInt, required, UsageError, type Command } from '../args.js';
import { DEFAULT_MODEL_DIR, defaultModel, SHAPES_TEMPLATES } from '../default-model.js';

export const indexBuild: Command = {
  name: 'index',
  summary: 'build an index from class names: text classifier, SuS support set, TIP-X caches',
  usage: `nameonly index --classes names.txt [--model <model-dir>] [--out <index-dir>] [options]
   (also: npm run index -- --classes names.txt ...)

Defaults: --model the embedded shapes-clip (converted once into ${DEFAULT_MODEL_DIR}), --out
indexes/<name of the class file>, --name that name. An existing --out is replaced atomically
(the previous version is kept beside it); a folder it did not write is refused.

Class list: one class per line, "name | synonym | synonym"; blank lines and # comments ignored.
Prompts:
  --templates file         one template per line with {} (default: the 80 CLIP ImageNet templates)
  --descriptions file.json CuPL-style {"class": ["sentence", ...]}, averaged into the classifier
  --sus-prompts photo|descriptions   prompts for retrieval/generation (default photo: "A photo of a {}.")
Support set (any mix; none = zero-shot only):
  --pool <dir|list.txt>    unlabeled images; top --shots per class by text-to-image similarity (HNSW)
  --generator <url>        text-to-image service: POST {prompt, seed, width, height} -> image
                           (workers-ai:<model> uses Cloudflare Workers AI with
                            CLOUDFLARE_ACCOUNT_ID / CLOUDFLARE_API_TOKEN)
  --shots-dir <dir>        labelled images, one sub-folder per class
  --shots K                images per class from pool / generator (default 16)
  --dedup 0.95             cosine at which retrieved images count as duplicates
Runtime:
  --name <name>            index name (default: the class file's name)
  --image-runtime engine|onnxruntime
                           image tower: the int8 engine the Worker runs (default), or the fp32
                           graph on onnxruntime-node (the default with --device cuda)
  --device cpu|cuda        onnxruntime's device; cuda falls back to cpu with a message (default cpu)
  --batch 32               images per encoder call
  --cache <dir>            pool embeddings and generated images (default .nameonly/cache)
  --generation-size N      generated image side (default: the model's input size)
  --max-tune-queries 1024  leave-one-out queries for the hyperparameter tuner`,
  async run(argv, io) {
    const { values } = parse(argv, {
      classes: { type: 'string', short: 'c' },
      model: { type: 'string', short: 'm' },
      out: { type: 'string', short: 'o' },
      name: { type: 'string' },
      templates: { type: 'string' },
      descriptions: { type: 'string' },
      'sus-prompts': { type: 'string' },
      pool: { type: 'string' },
      generator: { type: 'string' },
      'shots-dir': { type: 'string' },
      shots: { type: 'string' },
      dedup: { type: 'string' },
      device: { type: 'string' },
      'image-runtime': { type: 'string' },
      batch: { type: 'string' },
      cache: { type: 'string' },
      'generation-size': { type: 'string' },
      'max-tune-queries': { type: 'string' },
    });
    const device = values.device ?? 'cpu';
    if (device !== 'cpu' && device !== 'cuda') throw new UsageError('--device must be cpu or cuda');
    const imageRuntime = values['image-runtime'] ?? (device === 'cuda' ? 'onnxruntime' : 'engine');
    if (imageRuntime !== 'engine' && imageRuntime !== 'onnxruntime') throw new UsageError('--image-runtime must be engine or onnxruntime');
    if (imageRuntime === 'engine' && device === 'cuda') throw new UsageError('--device cuda needs --image-runtime onnxruntime (the engine runs on the CPU)');
    const susPrompts = values['sus-prompts'] ?? 'photo';
    if (susPrompts !== 'photo' && susPrompts !== 'descriptions') throw new UsageError('--sus-prompts must be photo or descriptions');
    const dedup = values.dedup === undefined ? 0.95 : Number(values.dedup);
    if (!(dedup > 0 && dedup <= 1)) throw new UsageError('--dedup must be in (0, 1]');
    const classes = required(values.classes, '--classes');
    const stem = basename(classes).replace(/\.[^.]*$/, '');
    const model = values.model ?? defaultModel(io.err);
    const out = values.out ?? join('indexes', stem);
    const name = values.name ?? (values.out ? undefined : stem);
    await buildIndex({
      classes,
      model,
      out,
      name,
      // shapes-clip was trained on captions of its world, not on photos: its own templates.
      templates: values.templates ?? (values.model ? undefined : SHAPES_TEMPLATES),
      descriptions: values.descriptions,
      pool: values.pool,
      generator: values.generator,
      shotsDir: values['shots-dir'],
      shots: positiveInt(values.shots, '--shots', 16),
      dedup,
      susPrompts,
      batch: positiveInt(values.batch, '--batch', 32),
      device,
      imageRuntime,
      cacheDir: values.cache ?? join('.nameonly', 'cache'),
      generationSize: values['generation-size'] === undefined ? undefined : positiveInt(values['generation-size'], '--generation-size', 64),
      maxTuneQueries: positiveInt(values['max-tune-queries'], '--max-tune-queries', 1024),
      log: io.err,
    });
    io.err(`
index written to ${out}. Next:
  nameonly classify --index ${out} <image|folder>...     classify offline
  nameonly segment --index ${out} <image> --out mask.png segment offline
  nameonly eval --index ${out} --images <labelled folder>  measure it on your own labelled images
  nameonly publish ${out} --local                     then "npm run dev" serves it (without --local: your R2)`);
    return 0;
  },
};
