// `npm run eval`: our version of the papers' tables, on the shapes world. Fresh seeded
// test renders go through the real pipeline: the converted shapes-clip, indexes built
// by the indexer (support sets from the shapes generator), the Worker's pipeline with
// its image tower, the int8 engine; onnxruntime-web's uint8 graph alongside for comparison.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { ATTENTION_NAMES, ATTENTIONS, ImageEncoder, type Attention, type ImageTower } from '../core/encoders.js';
import { openEngine } from '../engine/node.js';
import { DATA_FILE, loadIndex } from '../core/index-format.js';
import type { RgbImage } from '../core/image.js';
import { argmax } from '../core/linalg.js';
import { Pipeline } from '../core/pipeline.js';
import { METHODS, type ImageFeatures, type Method } from '../core/scoring/methods.js';
import { CALIP_DEFAULTS } from '../core/scoring/calip.js';
import { PAMR_DEFAULTS } from '../core/scoring/pamr.js';
import { SEGMENT_PROB_THRESHOLD } from '../core/scoring/segment.js';
import { queryTermsOf, searchGrids } from '../core/scoring/tune.js';
import { expectedCalibrationError, topProbability } from '../core/scoring/calibration.js';
import { buildIndex } from '../indexer/build.js';
import { convertCheckpoint } from '../models/convert.js';
import { ortFor, readModelInfo } from '../models/load-model.js';
import { startGeneratorServer } from './generator-server.js';
import { segmentationScores } from './user-eval.js';
import { COLOURS, randomScene, renderScene, rng, SHAPES, SIZES, UNSEEN_PAIRS, type Scene } from './shapes-world.js';

export const SHAPES_CHECKPOINT = new URL('../models/checkpoints/shapes-clip', import.meta.url).pathname;
const EXAMPLES = new URL('../examples/', import.meta.url).pathname;

export interface EvalConfig {
  workDir: string;
  shapeImages: number;
  pairImagesPerPair: number;
  segmentationImages: number;
  shots: number[];
  log: (line: string) => void;
}

export const FULL: Omit<EvalConfig, 'workDir' | 'log'> = { shapeImages: 800, pairImagesPerPair: 8, segmentationImages: 150, shots: [1, 4, 16] };
export const QUICK: Omit<EvalConfig, 'workDir' | 'log'> = { shapeImages: 48, pairImagesPerPair: 1, segmentationImages: 6, shots: [16] };

// Test scenes use seeds far from anything the generator is asked for (support seeds are prompt hashes).
const TEST_SEED = 900_000_000;

export interface Row {
  method: string;
  support: string;
  accuracy: number;
  params?: Record<string, number>;
}

export interface EvalReport {
  date: string;
  config: Omit<EvalConfig, 'workDir' | 'log'>;
  shapes: Row[];
  pairs: (Row & { seen: number; unseen: number })[];
  /** Per method, index of the largest support set: ECE (15 bins) on the 8-way renders before/after, rejection rates. */
  calibration: { method: Method; temperature: number; eceBefore: number; eceAfter: number; rejectBelow: number; rejectedInClass: number; rejectedNoise: number; rejectedEmpty: number; rejectedUnseenShapes: number }[];
  autoMethod: Method;
  /** The same test renders scored with support generated on the model's world and in the off-domain style. */
  supportStyles: { style: string; auto: Method; methods: { method: Method; accuracy: number; eceBefore: number; eceAfter: number; params: Record<string, number> }[] }[];
  segmentation: { attention: Attention; pamr: boolean; probThreshold: number | null; mIoU: number; pixelAccuracy: number; perClass: Record<string, number>; msPerImage: number }[];
  tuning: { method: string; nameOnly: Record<string, number>; nameOnlyAccuracy: number; peeking: Record<string, number>; peekingAccuracy: number }[];
  /** 8-way accuracy of the same renders through each image tower (the engine serves; onnxruntime-web is the anchor). */
  runtimes: { runtime: string; clip: number; calip: number; combined: number }[];
  seconds: number;
}

async function openIndex(dir: string) {
  return loadIndex(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')), readFileSync(join(dir, DATA_FILE)));
}

async function featuresOf(pipeline: Pipeline, images: RgbImage[]): Promise<ImageFeatures[]> {
  const out: ImageFeatures[] = [];
  for (let i = 0; i < images.length; i += 32) out.push(...(await pipeline.features(images.slice(i, i + 32))));
  return out;
}

function accuracy(pipeline: Pipeline, features: ImageFeatures[], labels: number[], method: Method, params = pipeline.params(method), subset?: (i: number) => boolean): number {
  let correct = 0, total = 0;
  features.forEach((f, i) => {
    if (subset && !subset(i)) return;
    total++;
    if (argmax(pipeline.logits(f, method, params)) === labels[i]) correct++;
  });
  return total ? correct / total : NaN;
}

export async function runEval(config: EvalConfig): Promise<EvalReport> {
  const started = Date.now();
  const { workDir, log } = config;
  log('converting shapes-clip...');
  const modelDir = join(workDir, 'model');
  convertCheckpoint(SHAPES_CHECKPOINT, modelDir);
  const info = readModelInfo(modelDir);
  const encoder: ImageTower = await openEngine(modelDir, info);
  const onnxruntimeWeb = await ImageEncoder.create(await ortFor('wasm'), readFileSync(join(modelDir, info.files.imageEncoderQuantized)), info);
  let generator: { server: Server; url: string } | undefined, flatGenerator: { server: Server; url: string } | undefined;
  try {
    generator = await startGeneratorServer();
    flatGenerator = await startGeneratorServer(0, '127.0.0.1', 'flat');
    const build = async (name: string, classes: string, shots: number, url = generator!.url) => {
      const out = join(workDir, 'indexes', name);
      await buildIndex({
        classes: join(EXAMPLES, classes),
        model: modelDir,
        out,
        templates: join(EXAMPLES, 'shapes-templates.txt'),
        generator: shots > 0 ? url : undefined,
        shots: Math.max(shots, 1),
        dedup: 0.95,
        susPrompts: 'photo',
        batch: 32,
        device: 'cpu',
        cacheDir: join(workDir, 'cache'),
        maxTuneQueries: 1024,
        log: () => {},
        progress: false,
      });
      return new Pipeline(encoder, await openIndex(out));
    };

    // ---- 8-way shape classification ----
    log('8-way shapes: building indexes and encoding test renders...');
    const shapeScenes = Array.from({ length: config.shapeImages }, (_, i) => randomScene(TEST_SEED + i, 1));
    const shapeLabels = shapeScenes.map((s) => SHAPES.indexOf(s.objects[0]!.shape));
    const zeroShot = await build('shapes-k0', 'shapes.txt', 0);
    const shapeFeatures = await featuresOf(zeroShot, shapeScenes.map((s) => s.image));
    const shapes: Row[] = [
      { method: 'CLIP', support: '-', accuracy: accuracy(zeroShot, shapeFeatures, shapeLabels, 'clip') },
      { method: 'CALIP (published defaults)', support: '-', accuracy: accuracy(zeroShot, shapeFeatures, shapeLabels, 'calip'), params: { ...CALIP_DEFAULTS } },
    ];
    const tuning: EvalReport['tuning'] = [];
    let largest: Pipeline | undefined;
    for (const k of config.shots) {
      const p = await build(`shapes-k${k}`, 'shapes.txt', k);
      largest = p;
      const sup = `${k} generated/class`;
      if (k === config.shots[config.shots.length - 1]) shapes.push({ method: 'CALIP (name-only tuned)', support: sup, accuracy: accuracy(p, shapeFeatures, shapeLabels, 'calip'), params: { ...p.index.manifest.hyperparameters.params.calip } });
      shapes.push({ method: 'TIP-X', support: sup, accuracy: accuracy(p, shapeFeatures, shapeLabels, 'tipx'), params: { ...p.index.manifest.hyperparameters.params.tipx } });
      shapes.push({ method: 'combined', support: sup, accuracy: accuracy(p, shapeFeatures, shapeLabels, 'combined'), params: { ...p.index.manifest.hyperparameters.params.combined } });
    }
    // ---- on-domain vs off-domain generated support (the 'flat' style), largest shot count ----
    log('off-domain support...');
    const kMaxShots = config.shots[config.shots.length - 1]!;
    const flat = await build(`shapes-k${kMaxShots}-flat`, 'shapes.txt', kMaxShots, flatGenerator!.url);
    // Accuracy and ECE on the 8-way renders, before and after the index's temperature.
    const calibrationOn = (p: Pipeline) =>
      METHODS.map((method) => {
        const logits = shapeFeatures.map((f) => p.logits(f, method));
        const correct = logits.map((l, i) => argmax(l) === shapeLabels[i]);
        const T = p.index.manifest.hyperparameters.calibration![method].temperature;
        return { method, accuracy: correct.filter(Boolean).length / correct.length, eceBefore: expectedCalibrationError(logits.map((l) => topProbability(l)), correct), eceAfter: expectedCalibrationError(logits.map((l) => topProbability(l, T)), correct), params: { ...p.params(method) } };
      });
    const supportStyles: EvalReport['supportStyles'] = [
      { style: 'world (on-domain)', auto: largest!.resolveMethod('auto'), methods: calibrationOn(largest!) },
      { style: 'flat (off-domain)', auto: flat.resolveMethod('auto'), methods: calibrationOn(flat) },
    ];

    // ---- calibration and "none of these", index of the largest support set ----
    log('calibration and rejection...');
    const noise = Array.from({ length: 48 }, (_, i) => {
      const random = rng(TEST_SEED + 900_000 + i);
      return { width: 64, height: 64, data: Uint8Array.from({ length: 64 * 64 * 3 }, () => Math.floor(random() * 256)) };
    });
    const empty = Array.from({ length: 48 }, (_, i) => renderScene({ objects: [] }, TEST_SEED + 910_000 + i, 64).image);
    // Shapes the index does not have: an index of the first four shapes, shown the other four.
    const half = await build('shapes-half', 'shapes-half.txt', config.shots[config.shots.length - 1]!);
    const unseenShapes = shapeScenes.filter((sc) => SHAPES.indexOf(sc.objects[0]!.shape) >= 4).slice(0, 96).map((sc) => sc.image);
    const [noiseF, emptyF] = [await featuresOf(largest!, noise), await featuresOf(largest!, empty)];
    const unseenF = await featuresOf(half, unseenShapes);
    const calibration: EvalReport['calibration'] = [];
    for (const [k, method] of METHODS.entries()) {
      const cal = largest!.index.manifest.hyperparameters.calibration![method];
      const rejected = (p: Pipeline, features: ImageFeatures[]) => {
        const c = p.index.manifest.hyperparameters.calibration![method];
        return features.filter((f) => topProbability(p.logits(f, method), c.temperature) < c.rejectBelow).length / features.length;
      };
      calibration.push({
        method,
        temperature: cal.temperature,
        eceBefore: supportStyles[0]!.methods[k]!.eceBefore,
        eceAfter: supportStyles[0]!.methods[k]!.eceAfter,
        rejectBelow: cal.rejectBelow,
        rejectedInClass: rejected(largest!, shapeFeatures),
        rejectedNoise: rejected(largest!, noiseF),
        rejectedEmpty: rejected(largest!, emptyF),
        rejectedUnseenShapes: rejected(half, unseenF),
      });
    }
    const autoMethod = largest!.resolveMethod('auto');

    // The cost of honesty: what a tuner that peeks at the test labels would pick.
    // The same renders through onnxruntime-web's uint8 graph: the engine must not cost accuracy.
    const ortPipeline = new Pipeline(onnxruntimeWeb, largest!.index);
    const ortFeatures = await featuresOf(ortPipeline, shapeScenes.map((s) => s.image));
    const runtimes: EvalReport['runtimes'] = [
      { runtime: 'int8 engine (the Worker\'s)', clip: accuracy(largest!, shapeFeatures, shapeLabels, 'clip'), calip: accuracy(largest!, shapeFeatures, shapeLabels, 'calip'), combined: accuracy(largest!, shapeFeatures, shapeLabels, 'combined') },
      { runtime: 'onnxruntime-web, uint8', clip: accuracy(ortPipeline, ortFeatures, shapeLabels, 'clip'), calip: accuracy(ortPipeline, ortFeatures, shapeLabels, 'calip'), combined: accuracy(ortPipeline, ortFeatures, shapeLabels, 'combined') },
    ];
    const support = largest!.index.support!;
    const peek = searchGrids(shapeFeatures.map((f, i) => queryTermsOf(f, shapeLabels[i]!, largest!.index.textClassifier, support)), support, false);
    const hp = largest!.index.manifest.hyperparameters.params;
    for (const method of ['calip', 'tipx', 'combined'] as const) {
      const { accuracy: peekAcc, tuned: _tuned, z: _z, kept: _kept, ...peekParams } = peek[method] as unknown as Record<string, number> & { accuracy: number };
      tuning.push({ method, nameOnly: { ...hp[method] }, nameOnlyAccuracy: accuracy(largest!, shapeFeatures, shapeLabels, method), peeking: peekParams, peekingAccuracy: peekAcc });
    }

    // ---- colour–shape pairs (64-way), unseen pairs separately ----
    log('64-way colour-shape pairs...');
    const pairNames = SHAPES.flatMap((s) => COLOURS.map((c) => `${c} ${s}`));
    const pairScenes: Scene[] = [];
    const pairLabels: number[] = [];
    pairNames.forEach((name, label) => {
      const [colour, shape] = name.split(' ') as [(typeof COLOURS)[number], (typeof SHAPES)[number]];
      for (let k = 0; k < config.pairImagesPerPair; k++) {
        const seed = TEST_SEED + 100_000 + label * 1000 + k;
        pairScenes.push(renderScene({ objects: [{ shape, colour, size: SIZES[Math.floor(rng(seed)() * 2)]! }] }, seed));
        pairLabels.push(label);
      }
    });
    const pairsZero = await build('pairs-k0', 'colour-shapes.txt', 0);
    const pairsSupport = await build(`pairs-k${config.shots[config.shots.length - 1]}`, 'colour-shapes.txt', config.shots[config.shots.length - 1]!);
    const pairFeatures = await featuresOf(pairsZero, pairScenes.map((s) => s.image));
    const unseen = (i: number) => UNSEEN_PAIRS.includes(pairNames[pairLabels[i]!]!);
    const pairRow = (method: string, p: Pipeline, m: Method, sup: string) => ({
      method,
      support: sup,
      accuracy: accuracy(p, pairFeatures, pairLabels, m),
      seen: accuracy(p, pairFeatures, pairLabels, m, undefined, (i) => !unseen(i)),
      unseen: accuracy(p, pairFeatures, pairLabels, m, undefined, unseen),
    });
    const kMax = `${config.shots[config.shots.length - 1]} generated/class`;
    const pairs = [pairRow('CLIP', pairsZero, 'clip', '-'), pairRow('CALIP (published defaults)', pairsZero, 'calip', '-'), pairRow('TIP-X', pairsSupport, 'tipx', kMax), pairRow('combined', pairsSupport, 'combined', kMax)];

    // ---- segmentation: every last block, with and without PAMR and the background threshold ----
    log('segmentation...');
    const seg = await build('segmentation', 'shapes-segmentation.txt', 0);
    const segScenes = Array.from({ length: config.segmentationImages }, (_, i) => randomScene(TEST_SEED + 500_000 + i, 3));
    const classNames = seg.index.manifest.classes.map((c) => c.name);
    const truths = segScenes.map((scene) => Uint16Array.from(scene.mask, (k) => (k === 0 ? 0 : 1 + SHAPES.indexOf(scene.objects[k - 1]!.shape))));
    const segmentation: EvalReport['segmentation'] = [];
    for (const attention of ATTENTIONS) {
      for (const refine of [undefined, PAMR_DEFAULTS]) {
        for (const threshold of [undefined, SEGMENT_PROB_THRESHOLD]) {
          const t = performance.now();
          const pairs = [];
          for (const [i, scene] of segScenes.entries()) pairs.push({ truth: truths[i]!, predicted: await seg.segment(scene.image, { attention, refine, probThreshold: threshold, backgroundClass: 0 }) });
          const ms = (performance.now() - t) / segScenes.length;
          const scores = segmentationScores(pairs, classNames.length, -1);
          const perClass = Object.fromEntries(classNames.flatMap((name, c) => (Number.isNaN(scores.perClass[c]!) ? [] : [[name, scores.perClass[c]!]])));
          segmentation.push({ attention, pamr: Boolean(refine), probThreshold: threshold ?? null, mIoU: scores.mIoU, pixelAccuracy: scores.pixelAccuracy, perClass, msPerImage: ms });
        }
      }
    }
    return { date: new Date().toISOString().slice(0, 10), config: { shapeImages: config.shapeImages, pairImagesPerPair: config.pairImagesPerPair, segmentationImages: config.segmentationImages, shots: config.shots }, shapes, pairs, calibration, autoMethod, supportStyles, segmentation, tuning, runtimes, seconds: (Date.now() - started) / 1000 };
  } finally {
    generator?.server.close();
    flatGenerator?.server.close();
    await encoder.release();
    await onnxruntimeWeb.release();
  }
}

const pct = (x: number) => (Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)} %`);
const fmt = (p?: Record<string, number>) => (p ? Object.entries(p).map(([k, v]) => `${k}=${v}`).join(', ') : '');

export function formatReport(r: EvalReport): string {
  const lines = [
    `### 8-way shape classification (${r.config.shapeImages} fresh renders, chance 12.5 %)`,
    '| method | support set | accuracy | hyperparameters |',
    '|---|---|---|---|',
    ...r.shapes.map((s) => `| ${s.method} | ${s.support} | ${pct(s.accuracy)} | ${fmt(s.params)} |`),
    '',
    `### 64-way colour–shape classification (${r.config.pairImagesPerPair} renders per pair; ${UNSEEN_PAIRS.length} pairs never seen in training)`,
    '| method | support set | all | seen pairs | unseen pairs |',
    '|---|---|---|---|---|',
    ...r.pairs.map((p) => `| ${p.method} | ${p.support} | ${pct(p.accuracy)} | ${pct(p.seen)} | ${pct(p.unseen)} |`),
    '',
    `### Support generated on the model's world vs off-domain (${r.config.shots[r.config.shots.length - 1]} generated/class; accuracy / ECE before → after calibration)`,
    '| support style | auto picks | CLIP | CALIP | TIP-X | combined |',
    '|---|---|---|---|---|---|',
    ...r.supportStyles.map((s) => `| ${s.style} | ${s.auto} | ${s.methods.map((m) => `${pct(m.accuracy)} / ${pct(m.eceBefore)} → ${pct(m.eceAfter)}`).join(' | ')} |`),
    '',
    `### Calibration and "none of these" (index of the largest support set; \`auto\` picks ${r.autoMethod})`,
    '| method | temperature | ECE before | ECE after | reject below | in-class rejected (false) | noise rejected | empty backgrounds rejected | shapes not in the index rejected |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.calibration.map((c) => `| ${c.method} | ${c.temperature.toFixed(2)} | ${pct(c.eceBefore)} | ${pct(c.eceAfter)} | ${c.rejectBelow.toFixed(2)} | ${pct(c.rejectedInClass)} | ${pct(c.rejectedNoise)} | ${pct(c.rejectedEmpty)} | ${pct(c.rejectedUnseenShapes)} |`),
    '',
    `### Segmentation (${r.config.segmentationImages} images with 1–3 objects; background + 8 shapes)`,
    '| last block | PAMR | background threshold | mIoU | pixel accuracy | ms / image |',
    '|---|---|---|---|---|---|',
    ...r.segmentation.map((s) => `| ${ATTENTION_NAMES[s.attention]} | ${s.pamr ? '10 steps, dilations 8, 16' : '-'} | ${s.probThreshold === null ? '-' : `prob < ${s.probThreshold}`} | ${pct(s.mIoU)} | ${pct(s.pixelAccuracy)} | ${s.msPerImage.toFixed(0)} |`),
    '',
    '### Hyperparameters: name-only (leave-one-out on the support set) vs peeking at test labels (the papers\' protocol), 8-way shapes',
    '| method | name-only choice | accuracy | peeking choice | accuracy |',
    '|---|---|---|---|---|',
    ...r.tuning.map((t) => `| ${t.method} | ${fmt(t.nameOnly)} | ${pct(t.nameOnlyAccuracy)} | ${fmt(t.peeking)} | ${pct(t.peekingAccuracy)} |`),
    '',
    `### Image tower: the same ${r.config.shapeImages} renders, 8-way shapes, index of the largest support set`,
    '| image tower | CLIP | CALIP | combined |',
    '|---|---|---|---|',
    ...r.runtimes.map((t) => `| ${t.runtime} | ${pct(t.clip)} | ${pct(t.calip)} | ${pct(t.combined)} |`),
  ];
  return lines.join('\n');
}
