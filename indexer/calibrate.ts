// Calibration of an index from its support set (core/scoring/calibration.ts): a temperature per
// method from the leave-one-out logits, and the "none of these" threshold between the support
// set's leave-one-out top probabilities and those of images of no class.
import type { IndexCalibration } from '../core/index-format.js';
import type { Matrix } from '../core/linalg.js';
import { fitTemperature, rejectionThreshold, topProbability } from '../core/scoring/calibration.js';
import { methodParams, METHODS, scoreImage, type HyperParams } from '../core/scoring/methods.js';
import type { CalipParams } from '../core/scoring/calip.js';
import type { SupportSet, TipxParams } from '../core/scoring/tipx.js';
import type { TuneResult } from '../core/scoring/tune.js';

export function calibrate(tuned: TuneResult, W: Matrix, support: SupportSet, chosen: { calip: CalipParams; tipx: TipxParams; combined: HyperParams }, probes: { embeds: Matrix; patches: Matrix[] }): IndexCalibration {
  const D = W.cols;
  const probeFeatures = probes.patches.map((patches, i) => ({ embed: probes.embeds.data.subarray(i * D, (i + 1) * D), patches }));
  return Object.fromEntries(
    METHODS.map((method) => {
      const { temperature, nllBefore, nllAfter } = fitTemperature(tuned.looLogits[method], tuned.looLabels);
      const inClass = tuned.looLogits[method].map((l) => topProbability(l, temperature));
      const outOfClass = probeFeatures.map((f) => topProbability(scoreImage(method, f, W, support, methodParams(method, chosen)), temperature));
      const { threshold, keptInClass, rejectedOutOfClass } = rejectionThreshold(inClass, outOfClass);
      return [method, { temperature, nllBefore, nllAfter, rejectBelow: threshold, keptInClass, rejectedOutOfClass }];
    }),
  ) as IndexCalibration;
}
