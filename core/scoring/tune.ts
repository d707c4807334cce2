// Name-only hyperparameters (beyond the papers). The official CALIP and SuS-X code
// grid-search β2/β3 and α/β/γ on labelled test or validation images, which a
// name-only user does not have. We choose them from the support set alone:
// leave-one-out, each support image scored against the classifier and the *other*
// support images, maximising accuracy; ties go to the grid point nearest the
// reference values. Deterministic; the heavy products go through `gemm`, which the
// indexer may replace with a native one.
import { matMulABt, type Matrix } from '../linalg.js';
import { CALIP_DEFAULTS, calipTerms, type CalipParams } from './calip.js';
import { type HyperParams } from './methods.js';
import { SIGNATURE_TEMPERATURE, tipxTerms, type SupportSet, type TipxParams } from './tipx.js';
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

export type Gemm = (a: Matrix, b: Matrix) => Matrix;

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

export function tuneHyperparameters(W: Matrix, support: SupportSet, options: TuneOptions = {}): TuneResult {
  const gemm = options.gemm ?? matMulABt;
  const C = W.rows, M = support.features.rows, D = W.cols;
  const queries = chooseQueries(support.labels, C, options.maxQueries ?? 1024);
  const Q = queries.length;
  const qFeatures: Matrix = { data: new Float32Array(Q * D), rows: Q, cols: D };
  queries.forEach((j, i) => qFeatures.data.set(support.features.data.subarray(j * D, (j + 1) * D), i * D));

  // Products shared by every grid point.
  const fDotW = gemm(qFeatures, W); // [Q,C]
  const affinity = gemm(qFeatures, support.features); // [Q,M]
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
  const crossEntropy = gemm({ data: p, rows: Q, cols: C }, support.logQ); // Σ_c p_c log q_jc, [Q,M]

  // CALIP: logits are linear in β2, β3, so the terms are computed once per query.
  const clipBase: Float32Array[] = [];
  const calipX: Float32Array[] = [];
  const calipZ: Float32Array[] = [];
  const calipGrid = new GridCounter(GRIDS.beta2, GRIDS.beta3);
  let clipCorrect = 0;
  queries.forEach((j, i) => {
    const row = fDotW.data.subarray(i * C, (i + 1) * C);
    const base = row.map((v) => LOGIT_SCALE * v);
    clipBase.push(base);
    let best = 0;
    for (let c = 1; c < C; c++) if (base[c]! > base[best]!) best = c;
    if (best === support.labels[j]) clipCorrect++;
    if (options.supportPatches) {
      const t = calipTerms(support.features.data.subarray(j * D, (j + 1) * D), options.supportPatches[j]!, W);
      calipX.push(t.visualGuidedText.map((v) => LOGIT_SCALE * v));
      calipZ.push(t.textAwareVisual.map((v) => LOGIT_SCALE * v));
      calipGrid.add(base, calipX[i]!, calipZ[i]!, support.labels[j]!);
    }
  });
  let calip: TuneResult['calip'] = { ...CALIP_DEFAULTS, looAccuracy: NaN, tuned: false };
  if (options.supportPatches) {
    const [b2, b3, correct] = pickBest(calipGrid, (a, b) => gridDistance(GRIDS.beta2, a, REFERENCE.beta2) + gridDistance(GRIDS.beta3, b, REFERENCE.beta3));
    calip = { beta2: b2, beta3: b3, looAccuracy: correct / Q, tuned: true };
  }

  // TIP-X and combined: for every β, the leave-one-out support terms of each query,
  // then every (α, γ) over two bases: CLIP logits and the tuned CALIP logits.
  const tipxGrids = GRIDS.beta.map(() => new GridCounter(GRIDS.alpha, GRIDS.gamma));
  const combinedGrids = GRIDS.beta.map(() => new GridCounter(GRIDS.alpha, GRIDS.gamma));
  const kl = new Float32Array(M);
  queries.forEach((j, i) => {
    const aff = affinity.data.subarray(i * M, (i + 1) * M);
    for (let m = 0; m < M; m++) kl[m] = Math.max(0, negEntropy[i]! - crossEntropy.data[i * M + m]!);
    const y = support.labels[j]!;
    const calipBase = options.supportPatches ? clipBase[i]!.map((v, c) => v + calip.beta2 * calipX[i]![c]! + calip.beta3 * calipZ[i]![c]!) : clipBase[i]!;
    GRIDS.beta.forEach((beta, ib) => {
      const terms = tipxTerms(aff, kl, support, beta, j);
      tipxGrids[ib]!.add(clipBase[i]!, terms.cache, terms.signature, y);
      combinedGrids[ib]!.add(calipBase, terms.cache, terms.signature, y);
    });
  });
  const pickTipx = (grids: GridCounter[]) => {
    let best: [number, number, number, number, number] = [0, 0, 0, -1, Infinity];
    GRIDS.beta.forEach((beta, ib) => {
      const [alpha, gamma, correct, dist] = pickBest(grids[ib]!, (a, g) =>
        gridDistance(GRIDS.alpha, a, REFERENCE.alpha) + gridDistance(GRIDS.beta, beta, REFERENCE.beta) + gridDistance(GRIDS.gamma, g, REFERENCE.gamma),
      );
      if (correct > best[3] || (correct === best[3] && dist < best[4])) best = [alpha, beta, gamma, correct, dist];
    });
    return { alpha: best[0], beta: best[1], gamma: best[2], looAccuracy: best[3] / Q };
  };
  const tipx = pickTipx(tipxGrids);
  const combined = { beta2: calip.beta2, beta3: calip.beta3, ...pickTipx(combinedGrids) };
  return { queries: Q, clip: { looAccuracy: clipCorrect / Q }, calip, tipx, combined };
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
