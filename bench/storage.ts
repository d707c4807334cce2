// Accuracy cost of compact support caches: logits with fp16 / uint8 storage vs fp32.
import { fromFloat16, quantizeRowsU8, toFloat16 } from '../core/compact.js';
import type { Matrix } from '../core/linalg.js';
import { scoreImage, type HyperParams, type ImageFeatures } from '../core/scoring/methods.js';
import type { SupportSet } from '../core/scoring/tipx.js';

export function compareSupportStorage(W: Matrix, support: SupportSet, image: ImageFeatures, params: HyperParams): void {
  const M = support.features.rows, C = support.numClasses, D = support.features.cols;
  const reference = scoreImage('tipx', image, W, support, params);
  const variants: [string, SupportSet, number][] = [
    ['fp32 features + fp32 log q', support, 4 * M * (D + C)],
    ['fp16 features + fp16 log q', { ...support, features: { ...support.features, data: fromFloat16(toFloat16(support.features.data)) }, logQ: { ...(support.logQ as Matrix), data: fromFloat16(toFloat16((support.logQ as Matrix).data)) } }, 2 * M * (D + C)],
    ['fp16 features + uint8 log q', { ...support, features: { ...support.features, data: fromFloat16(toFloat16(support.features.data)) }, logQ: quantizeRowsU8(support.logQ as Matrix) }, 2 * M * D + M * C + 8 * M],
  ];
  console.log('\n## Support cache storage (TIP-X logits of one image vs fp32 storage)');
  console.log('| storage | MB | max |Δ logit| | top-1 same |');
  console.log('|---|---|---|---|');
  const top = (x: Float32Array) => x.indexOf(Math.max(...x));
  for (const [name, s, bytes] of variants) {
    const logits = scoreImage('tipx', image, W, s, params);
    let diff = 0;
    for (let c = 0; c < logits.length; c++) diff = Math.max(diff, Math.abs(logits[c]! - reference[c]!));
    console.log(`| ${name} | ${(bytes / 2 ** 20).toFixed(1)} | ${diff.toExponential(2)} | ${top(logits) === top(reference) ? 'yes' : 'no'} |`);
  }
}
