// Accuracy cost of compact support storage: TIP-X logits with fp16 features vs fp32.
import { fromFloat16, toFloat16 } from '../core/compact.js';
import type { Matrix } from '../core/linalg.js';
import { scoreImage, type HyperParams, type ImageFeatures } from '../core/scoring/methods.js';
import type { SupportSet } from '../core/scoring/tipx.js';

export function compareSupportStorage(W: Matrix, support: SupportSet, image: ImageFeatures, params: HyperParams): void {
  const M = support.features.rows, D = support.features.cols;
  const reference = scoreImage('tipx', image, W, support, params);
  const variants: [string, SupportSet, number][] = [
    ['fp32 features + lse (float32)', support, 4 * M * (D + 1)],
    ['fp16 features + lse (float32), as indexed', { ...support, features: { ...support.features, data: fromFloat16(toFloat16(support.features.data)) } }, 2 * M * D + 4 * M],
  ];
  console.log('\n## Support storage (TIP-X logits of one image vs fp32 features)');
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
