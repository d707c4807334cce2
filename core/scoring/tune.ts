// Name-only hyperparameters (beyond the papers). The official CALIP and SuS-X code
// grid-search β2/β3 and α/β/γ on labelled test or validation images, which a
// name-only user does not have. We choose them from the support set alone:
// leave-one-out, each support image scored against the classifier and the *other*
// support images, maximising accuracy; ties go to the grid point nearest the
// reference values. Deterministic; the heavy products go through `gemm`, which the
// indexer may replace with a native one.
import { argmax, matMulABt, transpose, type Matrix } from '../linalg.js';
import { CALIP_DEFAULTS, calipTerms, type CalipParams } from './calip.js';
import { METHODS, type HyperParams, type ImageFeatures, type Method } from './methods.js';
import { addTipx, SIGNATURE_TEMPERATURE, tipxAffinities, tipxTerms, type SupportSet, type TipxParams } from './tipx.js';
import { LOGIT_SCALE } from './zeroshot.js';

export const GRIDS = {
  beta2: [0, 0.25, 0.5, 0.75, 1, 1.12, 1.5, 2, 2.5, 3, 4, 5],
  beta3: [0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
  alpha: [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50],
  beta: [1, 2, 3.5, 5.5, 8, 12, 20, 35, 50],
  gamma: [0, 0.1, 0.3, 1, 3, 10, 30],
};

/** Tie-break reference: CALIP's published values; Tip-Adapter's α = 1, β = 5.5; γ = 0.3 (ours). */
export const REFERENCE: HyperParams = { ...CALIP_DEFAULTS, alpha: 1, beta: 5.5, gamma: 0.3 };

export type Gemm = (a: Matrix, b: Matrix) => Matrix | Promise<Matrix>;

export interface TuneOptions {
  /** Patch embeddings of each support image, rows normalised [HW,D]; without them CALIP keeps its defaults. */
  supportPatches?: Matrix[];
  /** At most this many leave-one-out queries, stratified over classes (default 1024). */
  maxQueries?: number;
  gemm?: Gemm;
}

export interface TuneResult {
  queries: number;
  clip: { looAccuracy: number };
  calip: CalipParams & { looAccuracy: number; tuned: boolean };
  tipx: TipxParams & { looAccuracy: number };
  combined: HyperParams & { looAccuracy: number };
  /** What method=auto serves (chooseAuto). */
  auto: Method;
  /** The guard's verdict per tuned method (searchGrids): z of the best point over the reference, and which was kept. */
  guard: { calip?: Guarded; tipx: Guarded; combined: Guarded };
  /** Every method's leave-one-out logits at its chosen parameters, and the queries' labels (for calibration). */
  looLogits: Record<Method, Float32Array[]>;
  looLabels: number[];
}

/** Deterministic stratified subset: round-robin over classes in support order. */
export function chooseQueries(labels: Int32Array, numClasses: number, max: number): number[] {
  if (labels.length <= max) return Array.from(labels, (_, i) => i);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((y, i) => byClass[y]!.push(i));
  const picked: number[] = [];
  for (let round = 0; picked.length < max; round++) {
    for (const members of byClass) if (round < members.length && picked.length < max) picked.push(members[round]!);
  }
  return picked.sort((a, b) => a - b);
}

function gridDistance(values: number[], value: number, ref: number): number {
  const nearest = (v: number) => values.reduce((best, x, i) => (Math.abs(x - v) < Math.abs(values[best]! - v) ? i : best), 0);
  return Math.abs(nearest(value) - nearest(ref)) / values.length;
}

/** Counts correct argmaxes of base + a·x + b·z over queries, for every (a, b) pair. */
class GridCounter {
  readonly correct: Int32Array;
  constructor(readonly as: number[], readonly bs: number[]) {
    this.correct = new Int32Array(as.length * bs.length);
  }
  add(base: Float32Array, x: ArrayLike<number>, z: ArrayLike<number>, label: number): void {
    const C = base.length;
    for (let ia = 0; ia < this.as.length; ia++) {
      const a = this.as[ia]!;
      for (let ib = 0; ib < this.bs.length; ib++) {
        const b = this.bs[ib]!;
        const target = base[label]! + a * x[label]! + b * z[label]!;
        let wins = true;
        for (let c = 0; c < C && wins; c++) if (c !== label && base[c]! + a * x[c]! + b * z[c]! >= target) wins = false;
        if (wins) this.correct[ia * this.bs.length + ib]!++;
      }
    }
  }
}

export async function tuneHyperparameters(W: Matrix, support: SupportSet, options: TuneOptions = {}): Promise<TuneResult> {
  const gemm = options.gemm ?? matMulABt;
  const C = W.rows, M = support.features.rows, D = W.cols;
  const queries = chooseQueries(support.labels, C, options.maxQueries ?? 1024);
  const Q = queries.length;
  const qFeatures: Matrix = { data: new Float32Array(Q * D), rows: Q, cols: D };
  queries.forEach((j, i) => qFeatures.data.set(support.features.data.subarray(j * D, (j + 1) * D), i * D));

  // Products shared by every grid point.
  const fDotW = await gemm(qFeatures, W); // [Q,C]
  const affinity = await gemm(qFeatures, support.features); // [Q,M]
  const p = new Float32Array(Q * C);
  const negEntropy = new Float64Array(Q);
  for (let i = 0; i < Q; i++) {
    const off = i * C;
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, fDotW.data[off + c]! / SIGNATURE_TEMPERATURE);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(fDotW.data[off + c]! / SIGNATURE_TEMPERATURE - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c < C; c++) {
      const logp = fDotW.data[off + c]! / SIGNATURE_TEMPERATURE - lse;
      p[off + c] = Math.exp(logp);
      negEntropy[i]! += p[off + c]! * logp;
    }
  }
  // Σ_c p_c log q_jc = (P W)·F_j / τ − lse_j  (see SupportSet)
  const pW = await gemm({ data: p, rows: Q, cols: C }, transpose(W)); // [Q,D]
  const crossEntropy = await gemm(pW, support.features); // [Q,M], finished below // Σ_c p_c log q_jc, [Q,M]

  const terms: QueryTerms[] = queries.map((j, i) => {
    const kl = new Float32Array(M);
    for (let m = 0; m < M; m++) kl[m] = Math.max(0, negEntropy[i]! - (crossEntropy.data[i * M + m]! / SIGNATURE_TEMPERATURE - support.logNorm[m]!));
    const q: QueryTerms = { label: support.labels[j]!, clip: fDotW.data.slice(i * C, (i + 1) * C).map((v) => LOGIT_SCALE * v), affinity: affinity.data.subarray(i * M, (i + 1) * M), kl, skip: j };
    if (options.supportPatches) {
      const t = calipTerms(support.features.data.subarray(j * D, (j + 1) * D), options.supportPatches[j]!, W);
      q.calipX = t.visualGuidedText.map((v) => LOGIT_SCALE * v);
      q.calipZ = t.textAwareVisual.map((v) => LOGIT_SCALE * v);
    }
    return q;
  });
  const r = searchGrids(terms, support);
  const chosen: Record<Method, HyperParams> = {
    clip: { ...REFERENCE, beta2: 0, beta3: 0, alpha: 0, gamma: 0 },
    calip: { ...REFERENCE, beta2: r.calip.beta2, beta3: r.calip.beta3, alpha: 0, gamma: 0 },
    tipx: { ...REFERENCE, beta2: 0, beta3: 0, alpha: r.tipx.alpha, beta: r.tipx.beta, gamma: r.tipx.gamma },
    combined: r.combined,
  };
  const looLogits = Object.fromEntries(METHODS.map((m) => [m, terms.map((q) => termLogits(q, support, m, chosen[m]))])) as Record<Method, Float32Array[]>;
  return {
    auto: chooseAuto(looLogits, terms.map((q) => q.label)),
    looLogits,
    looLabels: terms.map((q) => q.label),
    queries: Q,
    clip: { looAccuracy: r.clip.accuracy },
    calip: { beta2: r.calip.beta2, beta3: r.calip.beta3, looAccuracy: r.calip.accuracy, tuned: r.calip.tuned },
    tipx: { alpha: r.tipx.alpha, beta: r.tipx.beta, gamma: r.tipx.gamma, looAccuracy: r.tipx.accuracy },
    combined: { beta2: r.combined.beta2, beta3: r.combined.beta3, alpha: r.combined.alpha, beta: r.combined.beta, gamma: r.combined.gamma, looAccuracy: r.combined.accuracy },
    guard: { calip: r.calip.kept ? { z: r.calip.z!, kept: r.calip.kept } : undefined, tipx: { z: r.tipx.z, kept: r.tipx.kept }, combined: { z: r.combined.z, kept: r.combined.kept } },
  };
}

/** CALIP's logits of a query with its terms: clip + β2·X + β3·Z. */
function calipLogitsOf(q: QueryTerms, beta2: number, beta3: number): Float32Array {
  return q.clip.map((v, c) => v + beta2 * q.calipX![c]! + beta3 * q.calipZ![c]!);
}

/** One query's logits under `method` with `params`, from its terms (its own support image left out). */
export function termLogits(q: QueryTerms, support: SupportSet, method: Method, params: HyperParams): Float32Array {
  const withCalip = (method === 'calip' || method === 'combined') && q.calipX && q.calipZ;
  const base = withCalip ? calipLogitsOf(q, params.beta2, params.beta3) : q.clip;
  if (method === 'clip' || method === 'calip') return base;
  return addTipx(base, tipxTerms(q.affinity, q.kl, support, params.beta, q.skip), params);
}

/** What the grid search needs of one labelled query image. */
export interface QueryTerms {
  label: number;
  /** 100 · f Wᵀ */
  clip: Float32Array;
  /** 100 · f Ft'ᵀ and 100 · fv' Wᵀ (CALIP); absent: CALIP keeps its defaults. */
  calipX?: Float32Array;
  calipZ?: Float32Array;
  /** f Fᵀ and KL to every support image [M]. */
  affinity: Float32Array;
  kl: Float32Array;
  /** The support image left out (leave-one-out), or −1. */
  skip: number;
}

/** Terms of a test image, for a tuner that may look at labels (the papers' protocol; `npm run eval` only). */
export function queryTermsOf(features: ImageFeatures, label: number, W: Matrix, support: SupportSet): QueryTerms {
  const t = calipTerms(features.embed, features.patches!, W);
  const { affinity, kl } = tipxAffinities(features.embed, t.clip, W, support);
  const scaled = (x: Float32Array) => x.map((v) => LOGIT_SCALE * v);
  return { label, clip: scaled(t.clip), calipX: scaled(t.visualGuidedText), calipZ: scaled(t.textAwareVisual), affinity, kl, skip: -1 };
}

/** Per tuned method: the guard's z of the best point over the reference values, and which it kept. */
export interface Guarded {
  z: number;
  kept: 'tuned' | 'reference';
}

export interface GridResult {
  clip: { accuracy: number };
  calip: CalipParams & { accuracy: number; tuned: boolean } & Partial<Guarded>;
  tipx: TipxParams & { accuracy: number } & Guarded;
  combined: HyperParams & { accuracy: number } & Guarded;
}

/**
 * The guard against a support set that misleads the tuner (generated images off the model's
 * domain): a tuned point replaces the reference values only when its leave-one-out gain over them
 * is beyond noise, z >= GUARD_Z in a paired sign test (McNemar) over the same queries.
 */
export const GUARD_Z = 2;

/** (wins − losses) / √(wins + losses) of `a` over `b` on the same queries; 0 when they never disagree. */
export function pairedZ(a: boolean[], b: boolean[]): number {
  let wins = 0, losses = 0;
  a.forEach((right, i) => {
    if (right && !b[i]) wins++;
    else if (!right && b[i]) losses++;
  });
  return wins + losses === 0 ? 0 : (wins - losses) / Math.sqrt(wins + losses);
}

/**
 * What method=auto serves: CLIP, unless another method's leave-one-out gain over it is beyond
 * noise (the guard's paired test, z >= GUARD_Z); of those, the most accurate, ties to the simpler
 * (METHODS' order). A support set that cannot show a method helps leaves plain CLIP.
 */
export function chooseAuto(looLogits: Record<Method, Float32Array[]>, labels: number[]): Method {
  const right = (m: Method) => looLogits[m].map((l, i) => argmax(l) === labels[i]);
  const clip = right('clip');
  let best: Method = 'clip', bestCorrect = clip.filter(Boolean).length;
  for (const m of METHODS.slice(1)) {
    const r = right(m), correct = r.filter(Boolean).length;
    if (pairedZ(r, clip) >= GUARD_Z && correct > bestCorrect) (best = m), (bestCorrect = correct);
  }
  return best;
}

/**
 * Accuracy of every grid point over the queries; the best of each method, ties to the
 * reference. CALIP first (its logits are linear in β2, β3), then TIP-X's α, β, γ over
 * CLIP, and over the chosen CALIP for the combined method. With `guard` (the name-only tuner),
 * each method keeps the reference values unless its best point beats them by GUARD_Z; the
 * label-peeking tuner of the eval runs without it.
 */
export function searchGrids(queries: QueryTerms[], support: SupportSet, guard = true): GridResult {
  const Q = queries.length;
  const withCalip = queries.every((q) => q.calipX && q.calipZ);
  const rightAt = (method: Method, params: HyperParams) => queries.map((q) => argmax(termLogits(q, support, method, params)) === q.label);
  /** The tuned point, or the reference where the guard says its gain is noise. */
  const guarded = <P extends Partial<HyperParams> & { accuracy: number }>(method: Method, tuned: P, base: HyperParams): P & { z: number; kept: 'tuned' | 'reference' } => {
    const referenceValues = pick(REFERENCE, Object.keys(tuned));
    const tunedRight = rightAt(method, { ...base, ...tuned }), referenceRight = rightAt(method, { ...base, ...referenceValues });
    const z = pairedZ(tunedRight, referenceRight);
    if (!guard || z >= GUARD_Z) return { ...tuned, z, kept: 'tuned' };
    return { ...tuned, ...referenceValues, accuracy: referenceRight.filter(Boolean).length / Q, z, kept: 'reference' };
  };
  const calipGrid = new GridCounter(GRIDS.beta2, GRIDS.beta3);
  let clipCorrect = 0;
  for (const q of queries) {
    if (argmax(q.clip) === q.label) clipCorrect++;
    if (withCalip) calipGrid.add(q.clip, q.calipX!, q.calipZ!, q.label);
  }
  const NONE = { ...REFERENCE, alpha: 0, gamma: 0 };
  let calip: GridResult['calip'] = { ...CALIP_DEFAULTS, accuracy: NaN, tuned: false };
  if (withCalip) {
    const [b2, b3, correct] = pickBest(calipGrid, (a, b) => gridDistance(GRIDS.beta2, a, REFERENCE.beta2) + gridDistance(GRIDS.beta3, b, REFERENCE.beta3));
    calip = { ...guarded('calip', { beta2: b2, beta3: b3, accuracy: correct / Q }, NONE), tuned: true };
  }
  const tipxGrids = GRIDS.beta.map(() => new GridCounter(GRIDS.alpha, GRIDS.gamma));
  const combinedGrids = GRIDS.beta.map(() => new GridCounter(GRIDS.alpha, GRIDS.gamma));
  for (const q of queries) {
    const calipBase = withCalip ? calipLogitsOf(q, calip.beta2, calip.beta3) : q.clip;
    GRIDS.beta.forEach((beta, ib) => {
      const terms = tipxTerms(q.affinity, q.kl, support, beta, q.skip);
      tipxGrids[ib]!.add(q.clip, terms.cache, terms.signature, q.label);
      combinedGrids[ib]!.add(calipBase, terms.cache, terms.signature, q.label);
    });
  }
  const pickTipx = (grids: GridCounter[]) => {
    let best: [number, number, number, number, number] = [0, 0, 0, -1, Infinity];
    GRIDS.beta.forEach((beta, ib) => {
      const [alpha, gamma, correct, dist] = pickBest(grids[ib]!, (a, g) =>
        gridDistance(GRIDS.alpha, a, REFERENCE.alpha) + gridDistance(GRIDS.beta, beta, REFERENCE.beta) + gridDistance(GRIDS.gamma, g, REFERENCE.gamma),
      );
      if (correct > best[3] || (correct === best[3] && dist < best[4])) best = [alpha, beta, gamma, correct, dist];
    });
    return { alpha: best[0], beta: best[1], gamma: best[2], accuracy: best[3] / Q };
  };
  const calipParams = { ...NONE, beta2: calip.beta2, beta3: calip.beta3 };
  return {
    clip: { accuracy: clipCorrect / Q },
    calip,
    tipx: guarded('tipx', pickTipx(tipxGrids), { ...NONE, beta2: 0, beta3: 0 }),
    combined: { beta2: calip.beta2, beta3: calip.beta3, ...guarded('combined', pickTipx(combinedGrids), calipParams) },
  };
}

function pick<T extends object>(values: T, keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([k]) => keys.includes(k))) as Partial<T>;
}

/** The grid point with the most correct queries; ties go to the smallest distance. */
function pickBest(grid: GridCounter, distance: (a: number, b: number) => number): [number, number, number, number] {
  let best: [number, number, number, number] = [grid.as[0]!, grid.bs[0]!, -1, Infinity];
  grid.as.forEach((a, ia) =>
    grid.bs.forEach((b, ib) => {
      const correct = grid.correct[ia * grid.bs.length + ib]!;
      const dist = distance(a, b);
      if (correct > best[2] || (correct === best[2] && dist < best[3])) best = [a, b, correct, dist];
    }),
  );
  return best;
}
