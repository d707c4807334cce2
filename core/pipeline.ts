// One image in, an answer out: decode -> preprocess -> encode -> score. The Worker
// serves exactly this; `npm run eval` measures exactly this.
import { ATTENTION_OUTPUT, DEFAULT_ATTENTION, type Attention, type ImageTower, type OrtModule } from './encoders.js';
import { crop, normalize as normalizePixels, preprocess, resize, type RgbImage } from './image.js';
import type { LoadedIndex } from './index-format.js';
import { matrix, matVec, normalizeRows, type Matrix } from './linalg.js';
import { CalipGraph, type CalipProducts } from './scoring/calip-graph.js';
import { SupportGraph, type SupportProducts } from './scoring/support-graph.js';
import { supportClassifier, tipxProbes } from './scoring/tipx.js';
import { withRequestLabels } from './request-labels.js';
import { calibratedProbabilities } from './scoring/calibration.js';
import { METHODS, methodParams, scoreImage, type HyperParams, type ImageFeatures, type Method } from './scoring/methods.js';
import { pamr, PAMR_DEFAULTS, type PamrOptions } from './scoring/pamr.js';
import { defaultShortSide, labelsFromMaps, SEGMENT_PROB_THRESHOLD, SegmentationAccumulator, segmentLayout, type SegmentationOptions } from './scoring/segment.js';

export type MethodChoice = Method | 'auto';

export interface LabelScore {
  label: string;
  /** Probability over all classes: softmax(logits / T), T the index's temperature for the method. */
  score: number;
  logit: number;
}

/** reject=: auto, off, or a probability. */
export const REJECT_PATTERN = '^(auto|off|0(\\.[0-9]+)?|1(\\.0*)?|\\.[0-9]+)$';

/** reject=auto|off|<probability> as text (API, CLI) to rank's option. */
export function rejectOption(text: string): 'auto' | 'off' | number {
  return text === 'auto' || text === 'off' ? text : Number(text);
}

/** The answer when no class is likely enough. */
export const NONE_OF_THESE = 'none of these';

export interface Ranked {
  /** The top label, or "none of these". */
  answer: string;
  labels: LabelScore[];
  /** Whether the scores are calibrated (an index with a support set). */
  calibrated: boolean;
  /** The threshold applied to the top score, or null. */
  rejectBelow: number | null;
}

/** How a segmentation runs: its last block, refinement, bounds, and what happens between encoder passes. */
export interface SegmentRun {
  /** The last block's attention for the patch features (default csa, SCLIP). */
  attention?: Attention;
  /** PAMR on the class maps at the image's size (SCLIP's recipe: 10 steps at dilations 8 and 16). */
  refine?: PamrOptions;
  /** Filled in: the milliseconds PAMR took. */
  timings?: { refine?: number };
  shortSide?: number;
  /** Refuse (WorkBudgetError) a size that needs more encoder passes than this. */
  maxWindows?: number;
  /** Windows per encoder call (default 8). */
  windowsPerPass?: number;
  /** Awaited between encoder calls: the Worker yields to other requests there and checks its deadline. */
  between?: () => Promise<void>;
}

/** A segmentation choice this model or index cannot serve (a last block it lacks, thresholds without a background class). */
export class SegmentChoiceError extends Error {}

/** A request whose work would exceed its budget, found before any of it is done. */
export class WorkBudgetError extends Error {}

export function tooManyWindows(shortSide: number, windows: number, maxWindows: number, imageSize: number): WorkBudgetError {
  return new WorkBudgetError(`segmenting at a short side of ${shortSide} px takes ${windows} passes of the image encoder, over the limit of ${maxWindows}; ask for a smaller size (the default is ${defaultShortSide(imageSize)})`);
}

export class Pipeline {
  /** CALIP's products outside JavaScript (onnxruntime or the engine); JavaScript otherwise. */
  private calipProducts?: CalipProducts;
  /** TIP-X's pass over F elsewhere (onnxruntime or the engine); JavaScript otherwise. */
  private supportProducts?: SupportProducts;

  constructor(
    readonly encoder: ImageTower,
    readonly index: LoadedIndex,
  ) {
    if (encoder.info.embedDim !== index.manifest.model.embedDim) {
      throw new Error(`index ${index.manifest.name} has ${index.manifest.model.embedDim}-d features, the model ${encoder.info.embedDim}-d`);
    }
  }

  /**
   * `auto`: what the index chose (CLIP unless another method's leave-one-out gain over it is
   * beyond noise, tune.ts chooseAuto); for older indexes the best leave-one-out accuracy, ties to
   * the simpler (clip, calip, tipx, combined); CALIP without a support set.
   */
  resolveMethod(method: MethodChoice): Method {
    if (method !== 'auto') return method;
    const chosen = this.index.manifest.hyperparameters.auto;
    if (chosen && this.index.support) return chosen;
    const loo = this.index.manifest.hyperparameters.looAccuracy;
    if (!this.index.support || !loo) return 'calip';
    return METHODS.reduce((best, m) => (loo[m] > loo[best] + 1e-12 ? m : best), 'clip' as Method);
  }

  /**
   * The top k labels with calibrated probabilities (the index's temperature for the method; raw
   * softmax without a support set to calibrate on), and whether the answer is "none of these":
   * the top probability under the threshold (`auto`: the index's, from its support set).
   */
  rank(logits: Float32Array, method: Method, k: number, reject: 'auto' | 'off' | number = 'auto'): Ranked {
    const calibration = this.index.manifest.hyperparameters.calibration?.[method];
    const probabilities = calibratedProbabilities(logits, calibration?.temperature ?? 1);
    const labels = Array.from(logits, (logit, c) => ({ label: this.index.manifest.classes[c]!.name, score: probabilities[c]!, logit }))
      .sort((a, b) => b.logit - a.logit)
      .slice(0, k);
    const threshold = reject === 'off' ? undefined : reject === 'auto' ? calibration?.rejectBelow : reject;
    const rejected = threshold !== undefined && labels[0]!.score < threshold;
    return { answer: rejected ? NONE_OF_THESE : labels[0]!.label, labels, calibrated: Boolean(calibration), rejectBelow: threshold ?? null };
  }

  params(method: Method): HyperParams {
    return methodParams(method, this.index.manifest.hyperparameters.params);
  }

  /** Normalised image and patch embeddings of a batch of images. */
  async features(images: RgbImage[], timings?: { preprocess?: number; encode?: number }): Promise<ImageFeatures[]> {
    const { imageSize: S, embedDim: D, grid } = this.encoder.info;
    const HW = grid * grid;
    let t = Date.now();
    const pixels = new Float32Array(images.length * 3 * S * S);
    images.forEach((img, i) => pixels.set(preprocess(img, this.encoder.info.preprocess), i * 3 * S * S));
    if (timings) timings.preprocess = Date.now() - t;
    t = Date.now();
    const out = await this.encoder.encode(pixels, ['image_embeds', 'patch_embeds']);
    if (timings) timings.encode = Date.now() - t;
    const embeds = normalizeRows(matrix(out.imageEmbeds!, images.length, D));
    return images.map((_, i) => ({
      embed: embeds.data.slice(i * D, (i + 1) * D),
      patches: normalizeRows(matrix(out.patchEmbeds!.slice(i * HW * D, (i + 1) * HW * D), HW, D)),
    }));
  }

  /**
   * Moves CALIP's and TIP-X's products onto onnxruntime. With `releaseSupportFeatures`, the
   * JavaScript copy of the support features is dropped once the graph holds them (the Worker:
   * one copy, not two, under 128 MB); `logits` (the JavaScript path) then refuses TIP-X.
   */
  async accelerate(ort: OrtModule, options: { releaseSupportFeatures?: boolean } = {}): Promise<this> {
    this.calipProducts = await CalipGraph.create(ort, this.index.textClassifier);
    const support = this.index.support;
    if (support) {
      this.supportProducts = await SupportGraph.create(ort, support.features);
      if (options.releaseSupportFeatures) support.features = { ...support.features, data: new Float32Array(0) };
    }
    return this;
  }

  /** CALIP's and TIP-X's products elsewhere (the Worker's engine: F never in JavaScript). */
  withProducts(products: { calip?: CalipProducts; support?: SupportProducts }): this {
    this.calipProducts = products.calip;
    this.supportProducts = products.support;
    return this;
  }

  logits(features: ImageFeatures, method: Method, params: HyperParams = this.params(method)): Float32Array {
    const support = this.index.support;
    if (support && support.features.data.length === 0 && (method === 'tipx' || method === 'combined')) throw new Error('support features are held outside JavaScript: use score()');
    return scoreImage(method, features, this.index.textClassifier, support, params);
  }

  /** As `logits`, with CALIP's products on onnxruntime when accelerated. */
  async score(features: ImageFeatures, method: Method, params: HyperParams = this.params(method)): Promise<Float32Array> {
    const W = this.index.textClassifier;
    const usesCalip = method === 'calip' || method === 'combined';
    const calip = usesCalip && this.calipProducts && features.patches ? await this.calipProducts.terms(features.embed, features.patches) : undefined;
    let supportProducts: Float32Array | undefined;
    if ((method === 'tipx' || method === 'combined') && this.supportProducts && this.index.support) {
      const Ws = supportClassifier(W, this.index.support);
      const fDotW = (calip?.clip ?? matVec(W, features.embed)).subarray(0, Ws.rows);
      supportProducts = await this.supportProducts.products(tipxProbes(features.embed, fDotW, Ws).probes);
    }
    return scoreImage(method, features, W, this.index.support, params, { calip, supportProducts });
  }

  /**
   * This index with `labels` (embedded as the rows of W) added as zero-shot classes after its own:
   * TIP-X's products stay where they are (its support set covers the index's classes only);
   * CALIP's terms are computed here, over every class.
   */
  withLabels(labels: string[], W: Matrix): Pipeline {
    return new Pipeline(this.encoder, withRequestLabels(this.index, labels, W)).withProducts({ support: this.supportProducts });
  }

  /** The last blocks this model's image tower computes (model.json; older conversions: CSA and the plain one). */
  get attentions(): readonly Attention[] {
    return this.encoder.info.attentions ?? ['csa', 'vanilla'];
  }

  /** The class named "background" (any case), which the thresholds send unsure pixels to. */
  get backgroundClass(): number | undefined {
    const k = this.index.manifest.classes.findIndex((c) => c.name.toLowerCase() === 'background');
    return k >= 0 ? k : undefined;
  }

  /**
   * A segmentation request's choices checked against this model and index, with the defaults:
   * CSA; SCLIP's prob_thd when the index has a background class. Throws SegmentChoiceError.
   */
  segmentChoices(request: { attention?: Attention; pamrSteps?: number; probThreshold?: number; areaThreshold?: number }): SegmentRun & SegmentationOptions {
    const attention = request.attention ?? DEFAULT_ATTENTION;
    if (!this.attentions.includes(attention)) throw new SegmentChoiceError(`model ${this.encoder.info.name} does not carry the ${attention} last block (it has ${this.attentions.join(', ')}); convert it again with this version`);
    const background = this.backgroundClass;
    if ((request.probThreshold !== undefined || request.areaThreshold !== undefined) && background === undefined) {
      throw new SegmentChoiceError(`the thresholds send pixels to a class named "background", and index ${this.index.manifest.name} has none`);
    }
    return {
      attention,
      refine: request.pamrSteps ? { ...PAMR_DEFAULTS, steps: request.pamrSteps } : undefined,
      probThreshold: request.probThreshold ?? (background === undefined ? undefined : SEGMENT_PROB_THRESHOLD),
      areaThreshold: request.areaThreshold,
      backgroundClass: background,
    };
  }

  /** Per-pixel classes (SCLIP slide inference) at the image's own size. */
  async segment(image: RgbImage, options: SegmentationOptions & SegmentRun & { queries?: Matrix; queryClass?: Int32Array } = {}): Promise<Uint16Array> {
    const attention = this.segmentChoices({ attention: options.attention }).attention!;
    const { imageSize: S, embedDim: D, grid, preprocess: pp } = this.encoder.info;
    const { shortSide, width: w, height: h, windows } = segmentLayout(image.width, image.height, S, options.shortSide);
    if (options.maxWindows !== undefined && windows.length > options.maxWindows) {
      throw tooManyWindows(shortSide, windows.length, options.maxWindows, S);
    }
    const resized = resize(image, w, h, 'bilinear');
    const { output, field } = ATTENTION_OUTPUT[attention];
    const queries = options.queries ?? this.index.queries;
    const acc = new SegmentationAccumulator(w, h, S, grid, queries);
    const batch = options.windowsPerPass ?? 8;
    for (let i = 0; i < windows.length; i += batch) {
      if (i > 0) await options.between?.();
      const chunk = windows.slice(i, i + batch);
      const pixels = new Float32Array(chunk.length * 3 * S * S);
      chunk.forEach((win, k) => pixels.set(normalizePixels(crop(resized, win.left, win.top, S, S), pp.mean, pp.std), k * 3 * S * S));
      const out = await this.encoder.encode(pixels, [output]);
      const feats = out[field]!;
      chunk.forEach((win, k) => acc.addWindow(win, normalizeRows(matrix(feats.slice(k * grid * grid * D, (k + 1) * grid * grid * D), grid * grid, D))));
    }
    const queryClass = options.queryClass ?? this.index.queryClass, C = this.index.manifest.counts.classes;
    if (!options.refine) return acc.labels(image.width, image.height, queryClass, C, options);
    await options.between?.();
    const t = Date.now();
    const refined = pamr(normalizePixels(image, pp.mean, pp.std), acc.cosineMaps(image.width, image.height), image.width, image.height, options.refine);
    if (options.timings) options.timings.refine = Date.now() - t;
    return labelsFromMaps(refined, acc.queries, queryClass, C, options);
  }
}
