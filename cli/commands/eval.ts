import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import { resize } from '../../core/image.js';
import { reportHtml } from '../../eval/report-html.js';
import { formatReport, FULL, QUICK, runEval } from '../../eval/run.js';
import { randomScene, SHAPES } from '../../eval/shapes-world.js';
import { evaluateIndex, type LabelledImage, type UserEvalReport } from '../../eval/user-eval.js';
import { Progress } from '../../indexer/progress.js';
import { parse, positiveInt, UsageError, type Command, type Io } from '../args.js';
import { labelledFiles } from '../labelled-images.js';
import { openIndex, readImage } from '../offline.js';

export const evaluate: Command = {
  name: 'eval',
  summary: 'accuracy of an index on your labelled images (or the shapes-world tables)',
  usage: `nameonly eval --index <index-dir> --images <folder> [--labels file.csv] [--masks <folder>]
              [--model <model-dir>] [--json report.json] [--html report.html]
nameonly eval --render <folder> [--count 64] [--seed 1]
nameonly eval [--quick] [--json report.json] [--work <dir>]      (also: npm run eval)

With --index: your own labelled images, a sub-folder per class (folder names matched to the
index's class names or synonyms, case-insensitive) or --labels file.csv ("file,label" lines).
Prints top-1 / top-5 / mean per-class accuracy of every method; --json writes the full report
(per class, the confusion matrix, the name-only tuner's choice next to what these labels would
choose); --html a self-contained page with the confusion matrix as a picture and the most
confused images. --masks: a folder mirroring --images with one PNG mask per image (pixel value =
class position in the index + 1, 0 = background): adds mIoU and per-class IoU.
--render: writes a labelled folder of the shapes world (images/<shape>/, masks/<shape>/) to try it.
Without --index or --render: renders fresh seeded test sets of the shapes world and prints the
product's accuracy tables (converted shapes-clip, generated support sets, the Worker's encoder).`,
  async run(argv, io) {
    const { values } = parse(argv, {
      quick: { type: 'boolean' }, json: { type: 'string' }, work: { type: 'string' }, html: { type: 'string' },
      index: { type: 'string' }, model: { type: 'string' }, images: { type: 'string' }, labels: { type: 'string' }, masks: { type: 'string' },
      render: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' },
    });
    if (values.render) return renderLabelledFolder(values.render, positiveInt(values.count, '--count', 64), positiveInt(values.seed, '--seed', 1), io);
    if (values.index) return evalIndex(values, io);
    if (values.images || values.labels || values.masks || values.html) throw new UsageError('--images, --labels, --masks and --html need --index <index-dir>');
    const workDir = values.work ?? mkdtempSync(join(tmpdir(), 'nameonly-eval-'));
    const report = await runEval({ ...(values.quick ? QUICK : FULL), workDir, log: io.err });
    io.out(formatReport(report));
    io.out(`\n(nameonly eval${values.quick ? ' --quick' : ''}, ${report.date}, ${report.seconds.toFixed(0)} s)`);
    if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
    return 0;
  },
};

async function evalIndex(values: { index?: string; model?: string; images?: string; labels?: string; masks?: string; json?: string; html?: string }, io: Io): Promise<number> {
  const { pipeline } = await openIndex(values.index!, values.model);
  const files = labelledFiles(values, pipeline.index.manifest.classes);
  const images: LabelledImage[] = [];
  for (const f of files) {
    const read = readImage(f.file);
    if ('error' in read) throw new Error(`${f.file}: ${read.error}`);
    const mask = f.mask ? decodePng(readFileSync(f.mask)) : undefined;
    if (mask && (mask.width !== read.image.width || mask.height !== read.image.height || mask.channels !== 1)) throw new Error(`${f.mask}: a mask must be a one-channel PNG of its image's size (${read.image.width}×${read.image.height})`);
    images.push({ file: f.file, label: f.label, image: read.image, mask: mask ? Uint8Array.from(mask.data) : undefined });
  }
  const progress = new Progress('evaluating', images.length, 'images');
  const report = await evaluateIndex(pipeline, images, () => progress.tick());
  progress.finish();
  io.out(summary(report));
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
  if (values.html) {
    const thumbnails = new Map<string, string>();
    for (const file of report.confused.flatMap((c) => c.files)) {
      const image = images.find((x) => x.file === file)!.image;
      const scale = 96 / Math.max(image.width, image.height);
      const small = scale < 1 ? resize(image, Math.max(1, Math.round(image.width * scale)), Math.max(1, Math.round(image.height * scale)), 'bilinear') : image;
      thumbnails.set(file, `data:image/png;base64,${Buffer.from(encodePng({ width: small.width, height: small.height, data: small.data, channels: 3, depth: 8 })).toString('base64')}`);
    }
    writeFileSync(values.html, reportHtml(report, thumbnails));
    io.err(`report: ${values.html}`);
  }
  return 0;
}

function summary(r: UserEvalReport): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [`${r.index.name} on ${r.images} images (${r.classes.length} classes)`, '', '| method | top-1 | top-5 | mean per class |', '|---|---|---|---|'];
  for (const [m, s] of Object.entries(r.methods)) lines.push(`| ${m}${m === 'auto' ? ` (${r.auto})` : ''} | ${pct(s.top1)} | ${pct(s.top5)} | ${pct(s.meanPerClass)} |`);
  if (r.tuner) lines.push('', `combined: name-only ${pct(r.tuner.nameOnly.combined.accuracy)}, chosen with these labels ${pct(r.tuner.peeking.combined.accuracy)}`);
  if (r.segmentation) lines.push('', `segmentation: mIoU ${pct(r.segmentation.mIoU)}, pixel accuracy ${pct(r.segmentation.pixelAccuracy)} over ${r.segmentation.images} images`);
  return lines.join('\n');
}

/** Single-object scenes of the shapes world, a folder per shape, masks beside them (class position + 1). */
function renderLabelledFolder(dir: string, count: number, seed: number, io: Io): number {
  for (let i = 0; i < count; i++) {
    const scene = randomScene(seed * 100_003 + i, 1, 64);
    const shape = scene.objects[0]!.shape;
    const name = `${String(i).padStart(4, '0')}.png`;
    for (const sub of ['images', 'masks']) mkdirSync(join(dir, sub, shape), { recursive: true });
    writeFileSync(join(dir, 'images', shape, name), encodePng({ width: 64, height: 64, data: scene.image.data, channels: 3, depth: 8 }));
    const mask = scene.mask.map((k) => (k === 0 ? 0 : SHAPES.indexOf(scene.objects[k - 1]!.shape) + 1));
    writeFileSync(join(dir, 'masks', shape, name), encodePng({ width: 64, height: 64, data: mask, channels: 1, depth: 8 }));
  }
  io.err(`${count} labelled images of the shapes world in ${join(dir, 'images')} (masks in ${join(dir, 'masks')}); try:\n  nameonly eval --index <index-dir> --images ${join(dir, 'images')} --masks ${join(dir, 'masks')} --html report.html`);
  return 0;
}
