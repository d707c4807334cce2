// How an index does on the user's own labelled images: accuracy of every method, per class,
// the confusion matrix, what the name-only tuner chose next to what these labels would choose,
// and with masks, segmentation IoU. The scores are pure functions of labels and predictions.
import type { RgbImage } from '../core/image.js';
import type { Pipeline } from '../core/pipeline.js';
import type { HyperParams, ImageFeatures, Method } from '../core/scoring/methods.js';
import { queryTermsOf, searchGrids } from '../core/scoring/tune.js';

export interface MethodScores {
  top1: number;
  top5: number;
  meanPerClass: number;
  /** Top-1 accuracy of each class (NaN where the class has no image). */
  perClass: number[];
}

/** Top-1, top-5 and mean per-class accuracy of logits [N][C] against labels. */
export function accuracyScores(logits: Float32Array[], labels: number[], numClasses: number): MethodScores & { predictions: number[] } {
  const correct = new Array<number>(numClasses).fill(0), seen = new Array<number>(numClasses).fill(0);
  let top1 = 0, top5 = 0;
  const predictions = logits.map((row, i) => {
    const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
    const label = labels[i]!;
    seen[label]!++;
    if (order[0] === label) (top1++, correct[label]!++);
    if (order.slice(0, 5).includes(label)) top5++;
    return order[0]!;
  });
  const perClass = correct.map((c, k) => (seen[k] ? c / seen[k]! : NaN));
  const present = perClass.filter((a) => !Number.isNaN(a));
  return { top1: top1 / labels.length, top5: top5 / labels.length, meanPerClass: present.reduce((a, b) => a + b, 0) / present.length, perClass, predictions };
}

/** counts[true][predicted]. */
export function confusionMatrix(labels: number[], predictions: number[], numClasses: number): number[][] {
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  labels.forEach((y, i) => m[y]![predictions[i]!]!++);
  return m;
}

/**
 * Intersection over union per class over all pixels whose true label is not `ignore`
 * (background when the index has no background class); NaN for a class neither true nor predicted.
 */
export function segmentationScores(pairs: { truth: Uint16Array; predicted: Uint16Array }[], numClasses: number, ignore: number): { mIoU: number; pixelAccuracy: number; perClass: number[] } {
  const inter = new Float64Array(numClasses), union = new Float64Array(numClasses);
  let right = 0, counted = 0;
  for (const { truth, predicted } of pairs) {
    for (let i = 0; i < truth.length; i++) {
      const t = truth[i]!, p = predicted[i]!;
      if (t === ignore) continue;
      counted++;
      if (t === p) (inter[t]!++, union[t]!++, right++);
      else (union[t]!++, union[p]!++);
    }
  }
  const perClass = Array.from(inter, (v, k) => (union[k]! > 0 ? v / union[k]! : NaN));
  const present = perClass.filter((v) => !Number.isNaN(v));
  return { mIoU: present.reduce((a, b) => a + b, 0) / present.length, pixelAccuracy: right / counted, perClass };
}

export interface LabelledImage {
  file: string;
  label: number;
  image: RgbImage;
  /** Per pixel: class index + 1, 0 = background (as the shapes world writes masks). */
  mask?: Uint8Array;
}

export interface UserEvalReport {
  index: { name: string; version: string };
  model: string;
  classes: string[];
  images: number;
  methods: Partial<Record<Method | 'auto', MethodScores>>;
  auto: Method;
  /** Of the `auto` method: confusion[true][predicted]. */
  confusion: number[][];
  /** The most confused (true, predicted) pairs, with their images. */
  confused: { truth: string; predicted: string; count: number; files: string[] }[];
  tuner?: { nameOnly: Record<'calip' | 'tipx' | 'combined', Partial<HyperParams> & { accuracy: number }>; peeking: Record<'calip' | 'tipx' | 'combined', Partial<HyperParams> & { accuracy: number }> };
  segmentation?: { images: number; mIoU: number; pixelAccuracy: number; perClass: number[] };
}

export async function evaluateIndex(pipeline: Pipeline, images: LabelledImage[], progress: () => void = () => {}): Promise<UserEvalReport> {
  const manifest = pipeline.index.manifest;
  const C = manifest.counts.classes, names = manifest.classes.map((c) => c.name);
  const labels = images.map((x) => x.label);
  const features: ImageFeatures[] = [];
  const segmentations: { truth: Uint16Array; predicted: Uint16Array }[] = [];
  for (const x of images) {
    features.push((await pipeline.features([x.image]))[0]!);
    if (x.mask) segmentations.push({ truth: Uint16Array.from(x.mask, (v) => (v === 0 ? C : v - 1)), predicted: await pipeline.segment(x.image) });
    progress();
  }
  const methods: Method[] = pipeline.index.support ? ['clip', 'calip', 'tipx', 'combined'] : ['clip', 'calip'];
  const auto = pipeline.resolveMethod('auto');
  const scores: UserEvalReport['methods'] = {};
  let autoPredictions: number[] = [];
  for (const method of methods) {
    const logits: Float32Array[] = [];
    for (const f of features) logits.push(await pipeline.score(f, method));
    const { predictions, ...rest } = accuracyScores(logits, labels, C);
    scores[method] = rest;
    if (method === auto) {
      scores.auto = rest;
      autoPredictions = predictions;
    }
  }
  const confusion = confusionMatrix(labels, autoPredictions, C);
  const confused = confusion
    .flatMap((row, t) => row.map((count, p) => ({ t, p, count })))
    .filter((c) => c.t !== c.p && c.count > 0)
    .sort((a, b) => b.count - a.count)
    .slice(0, 6)
    .map(({ t, p, count }) => ({ truth: names[t]!, predicted: names[p]!, count, files: images.filter((x, i) => x.label === t && autoPredictions[i] === p).slice(0, 4).map((x) => x.file) }));

  let tuner: UserEvalReport['tuner'];
  const support = pipeline.index.support;
  if (support) {
    // What these labels would choose (the papers' protocol) next to what the name-only tuner chose.
    const peek = searchGrids(features.map((f, i) => queryTermsOf(f, labels[i]!, pipeline.index.textClassifier, support)), support, false);
    const chosen = manifest.hyperparameters.params;
    tuner = {
      nameOnly: { calip: { ...chosen.calip, accuracy: scores.calip!.top1 }, tipx: { ...chosen.tipx, accuracy: scores.tipx!.top1 }, combined: { ...chosen.combined, accuracy: scores.combined!.top1 } },
      peeking: {
        calip: { beta2: peek.calip.beta2, beta3: peek.calip.beta3, accuracy: peek.calip.accuracy },
        tipx: { alpha: peek.tipx.alpha, beta: peek.tipx.beta, gamma: peek.tipx.gamma, accuracy: peek.tipx.accuracy },
        combined: { beta2: peek.combined.beta2, beta3: peek.combined.beta3, alpha: peek.combined.alpha, beta: peek.combined.beta, gamma: peek.combined.gamma, accuracy: peek.combined.accuracy },
      },
    };
  }
  const background = names.findIndex((n) => n.toLowerCase() === 'background');
  const segmentation = segmentations.length
    ? { images: segmentations.length, ...segmentationScores(background >= 0 ? segmentations.map((s) => ({ ...s, truth: s.truth.map((v) => (v === C ? background : v)) })) : segmentations, C + 1, background >= 0 ? -1 : C) }
    : undefined;
  if (segmentation) segmentation.perClass = segmentation.perClass.slice(0, C);
  return { index: { name: manifest.name, version: manifest.version }, model: pipeline.encoder.info.name, classes: names, images: images.length, methods: scores, auto, confusion, confused, tuner, segmentation };
}
