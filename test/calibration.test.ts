// Scores a person can trust: temperature scaling, expected calibration error, "none of these",
// and `auto`, each on planted cases whose answer is known.
import { describe, expect, it } from 'vitest';
import type { LoadedIndex } from '../core/index-format.js';
import { matrix } from '../core/linalg.js';
import { NONE_OF_THESE, Pipeline } from '../core/pipeline.js';
import { calibratedProbabilities, expectedCalibrationError, fitTemperature, meanNll, rejectionThreshold } from '../core/scoring/calibration.js';
import { rng } from '../eval/shapes-world.js';
import { chooseAuto } from '../core/scoring/tune.js';

describe('temperature scaling', () => {
  it('recovers the temperature that generated the labels, and lowers the NLL', () => {
    // Labels drawn from softmax(z); the model reports 6·z: overconfident by a factor of 6.
    const random = rng(11);
    const logits: Float32Array[] = [], labels: number[] = [];
    for (let i = 0; i < 4000; i++) {
      const z = Float32Array.from({ length: 5 }, () => 3 * (random() - 0.5));
      const p = calibratedProbabilities(z);
      let u = random(), y = 0;
      while (y < 4 && (u -= p[y]!) > 0) y++;
      logits.push(z.map((v) => 6 * v));
      labels.push(y);
    }
    const fit = fitTemperature(logits, labels);
    expect(fit.temperature).toBeGreaterThan(6 * 0.9);
    expect(fit.temperature).toBeLessThan(6 * 1.1);
    expect(fit.nllAfter).toBeLessThan(fit.nllBefore);
    expect(fit.nllAfter).toBeCloseTo(meanNll(logits, labels, fit.temperature), 12);
    // It is the minimum: a little either way is worse.
    expect(meanNll(logits, labels, fit.temperature * 1.2)).toBeGreaterThan(fit.nllAfter);
    expect(meanNll(logits, labels, fit.temperature / 1.2)).toBeGreaterThan(fit.nllAfter);
  });

  it('expected calibration error, hand-worked: two bins, |accuracy − confidence| weighted by their share', () => {
    // Bin [0.6, 0.667): 0.62, 0.64 with one right → |0.5 − 0.63| = 0.13, share 1/2.
    // Bin [0.933, 1]: 0.95, 0.97 both right → |1 − 0.96| = 0.04, share 1/2.
    expect(expectedCalibrationError([0.62, 0.64, 0.95, 0.97], [true, false, true, true])).toBeCloseTo(0.5 * 0.13 + 0.5 * 0.04, 12);
  });
});

describe('"none of these"', () => {
  it('the threshold falls midway between in-class and out-of-class top probabilities planted apart; overlapping, it keeps the support set', () => {
    const inClass = [0.91, 0.85, 0.97, 0.62, 0.88], outOfClass = [0.31, 0.4, 0.22, 0.55];
    const r = rejectionThreshold(inClass, outOfClass);
    expect(r.threshold).toBeCloseTo((0.55 + 0.62) / 2, 12);
    expect([r.keptInClass, r.rejectedOutOfClass]).toEqual([1, 1]);
    // Overlapping: at the in-class 5th percentile (here its minimum), nothing of the support set lost.
    const overlap = rejectionThreshold([0.9, 0.5, 0.8], [0.6, 0.2]);
    expect([overlap.threshold, overlap.keptInClass, overlap.rejectedOutOfClass]).toEqual([0.5, 1, 0.5]);
  });
});

/** A pipeline over a planted index: 3 classes, leave-one-out accuracies and calibration as given. */
function planted(looAccuracy: Record<'clip' | 'calip' | 'tipx' | 'combined', number>, temperature: number, rejectBelow: number): Pipeline {
  const calibration = Object.fromEntries(['clip', 'calip', 'tipx', 'combined'].map((m) => [m, { temperature, nllBefore: 1, nllAfter: 0.5, rejectBelow, keptInClass: 1, rejectedOutOfClass: 1 }]));
  const W = matrix(Float32Array.of(1, 0, 0, 1, 0.7, 0.7), 3, 2);
  const index = {
    manifest: { name: 'planted', classes: [{ name: 'a', synonyms: [] }, { name: 'b', synonyms: [] }, { name: 'c', synonyms: [] }], model: { embedDim: 2 }, hyperparameters: { source: 'leave-one-out', params: {}, looAccuracy: { ...looAccuracy, queries: 30 }, calibration } },
    textClassifier: W,
    queries: W,
    queryClass: Int32Array.of(0, 1, 2),
    support: { features: W, labels: Int32Array.of(0, 1, 2) },
  } as unknown as LoadedIndex;
  return new Pipeline({ info: { embedDim: 2 } } as never, index);
}

describe('auto and calibrated answers', () => {
  it('auto picks the method with the best leave-one-out accuracy; a tie goes to the simpler', () => {
    expect(planted({ clip: 0.7, calip: 0.72, tipx: 0.8, combined: 0.78 }, 1, 0).resolveMethod('auto')).toBe('tipx');
    expect(planted({ clip: 0.7, calip: 0.7, tipx: 0.7, combined: 0.7 }, 1, 0).resolveMethod('auto')).toBe('clip');
    expect(planted({ clip: 0.6, calip: 0.8, tipx: 0.7, combined: 0.8 }, 1, 0).resolveMethod('auto')).toBe('calip');
  });

  it('the index chooses auto: CLIP unless a method beats it beyond noise on the same leave-one-out queries; the pipeline serves that choice', () => {
    // 40 queries of 2 classes; logits that put class 0 first are right for queries of class 0.
    const labels = Array.from({ length: 40 }, (_, i) => i % 2);
    const answering = (wrongFrom: number) => labels.map((y, i) => (i >= wrongFrom ? Float32Array.of(y, 1 - y) : Float32Array.of(1 - y, y)));
    const clip = answering(30); // right on 0..29
    // tipx right on every query: 10 wins, 0 losses, z = 3.2; calip: right on 0..31, z = 1.4 (noise).
    expect(chooseAuto({ clip, calip: answering(32), tipx: answering(40), combined: answering(35) }, labels)).toBe('tipx');
    expect(chooseAuto({ clip, calip: answering(32), tipx: answering(31), combined: answering(33) }, labels)).toBe('clip');
    const pipeline = planted({ clip: 0.7, calip: 0.72, tipx: 0.8, combined: 0.78 }, 1, 0);
    pipeline.index.manifest.hyperparameters.auto = 'clip';
    expect(pipeline.resolveMethod('auto')).toBe('clip');
  });

  it('scores are softmax(logits / T); under the threshold the answer is "none of these" with the guesses kept', () => {
    const logits = Float32Array.of(30, 10, 0);
    const sure = planted({ clip: 1, calip: 0, tipx: 0, combined: 0 }, 20, 0.6).rank(logits, 'clip', 3);
    const expected = calibratedProbabilities(logits, 20);
    expect(sure.labels.map((l) => l.score)).toEqual(Array.from(expected));
    expect(sure.calibrated).toBe(true);
    expect(sure.answer).toBe('a'); // 0.67 ≥ 0.6
    const unsure = planted({ clip: 1, calip: 0, tipx: 0, combined: 0 }, 20, 0.7).rank(logits, 'clip', 2);
    expect(unsure.answer).toBe(NONE_OF_THESE);
    expect(unsure.labels.map((l) => l.label)).toEqual(['a', 'b']);
    expect(planted({ clip: 1, calip: 0, tipx: 0, combined: 0 }, 20, 0.7).rank(logits, 'clip', 2, 'off').answer).toBe('a');
    expect(planted({ clip: 1, calip: 0, tipx: 0, combined: 0 }, 20, 0).rank(logits, 'clip', 2, 0.99).answer).toBe(NONE_OF_THESE);
  });
});
