// The zero-shot text classifier (CLIP prompt ensembling, Radford et al. 2021 Sec. 3.1.4):
// per class, normalise each prompt embedding, average, normalise the mean.
import { matrix, normalizeRows, type Matrix } from '../linalg.js';

export function fillTemplate(template: string, className: string): string {
  return template.includes('{}') ? template.replaceAll('{}', className) : `${template} ${className}`;
}

/** promptEmbeds: [P,D] for all prompts of all classes; promptsPerClass: P_c, summing to P -> W [C,D]. */
export function textClassifier(promptEmbeds: Matrix, promptsPerClass: number[]): Matrix {
  const total = promptsPerClass.reduce((a, b) => a + b, 0);
  if (total !== promptEmbeds.rows) throw new Error(`textClassifier: ${promptEmbeds.rows} embeddings for ${total} prompts`);
  const D = promptEmbeds.cols;
  const unit = normalizeRows(promptEmbeds);
  const mean = new Float32Array(promptsPerClass.length * D);
  let r = 0;
  promptsPerClass.forEach((count, c) => {
    if (count === 0) throw new Error(`textClassifier: class ${c} has no prompts`);
    for (let k = 0; k < count; k++, r++) for (let d = 0; d < D; d++) mean[c * D + d]! += unit.data[r * D + d]! / count;
  });
  return normalizeRows(matrix(mean, promptsPerClass.length, D));
}
