// SuS-LC retrieval (Udandarao et al. 2023, Sec. 3.1): per class, the pool images
// nearest to the class's SuS prompt embedding, through an HNSW index (hnswlib-node).
// Near-duplicates are dropped and an image goes to at most one class: among the
// classes that retrieved it, the one it matches best.
import hnswlib from 'hnswlib-node';
import { dot, type Matrix } from '../core/linalg.js';

export interface RetrievalOptions {
  shots: number;
  /** Cosine at or above which two images of a class count as duplicates. */
  dedupThreshold: number;
  efSearch?: number;
}

export interface Retrieval {
  /** Pool row indices per class, best first. */
  perClass: number[][];
  rounds: number;
}

export class VectorIndex {
  private readonly index: hnswlib.HierarchicalNSW;

  constructor(readonly vectors: Matrix) {
    // Inner product on unit vectors: distance = 1 − cosine.
    this.index = new hnswlib.HierarchicalNSW('ip', vectors.cols);
    this.index.initIndex(Math.max(1, vectors.rows), 16, 200, 100);
    for (let i = 0; i < vectors.rows; i++) this.index.addPoint(Array.from(vectors.data.subarray(i * vectors.cols, (i + 1) * vectors.cols)), i);
  }

  search(query: Float32Array, k: number, ef: number): { index: number; similarity: number }[] {
    const kk = Math.min(k, this.vectors.rows);
    this.index.setEf(Math.max(ef, kk));
    const { neighbors, distances } = this.index.searchKnn(Array.from(query), kk);
    return neighbors.map((index, i) => ({ index, similarity: 1 - distances[i]! }));
  }
}

/** How far a class's search may widen: this many times its first k (then it reports a shortfall). */
const MAX_WIDENING = 16;

export function retrieve(index: VectorIndex, classQueries: Matrix, options: RetrievalOptions): Retrieval {
  const { shots, dedupThreshold } = options;
  const pool = index.vectors, D = pool.cols, C = classQueries.rows;
  const firstK = Math.min(pool.rows, Math.max(4 * shots, 32));
  const maxK = Math.min(pool.rows, firstK * MAX_WIDENING);
  let k = firstK;
  let perClass: number[][] = [];
  let rounds = 0;
  for (;;) {
    rounds++;
    const candidates = Array.from({ length: C }, (_, c) => index.search(classQueries.data.subarray(c * D, (c + 1) * D), k, options.efSearch ?? 2 * k));
    // Each image belongs to the class that retrieved it with the highest similarity.
    const ownerClass = new Int32Array(pool.rows).fill(-1);
    const ownerSimilarity = new Float32Array(pool.rows).fill(-Infinity);
    candidates.forEach((list, c) =>
      list.forEach(({ index: i, similarity }) => {
        if (similarity > ownerSimilarity[i]!) (ownerSimilarity[i] = similarity), (ownerClass[i] = c);
      }),
    );
    perClass = candidates.map((list, c) => {
      const chosen: number[] = [];
      for (const { index: i } of list) {
        if (chosen.length >= shots) break;
        if (ownerClass[i] !== c) continue;
        if (chosen.some((j) => dot(pool.data, i * D, pool.data, j * D, D) >= dedupThreshold)) continue;
        chosen.push(i);
      }
      return chosen;
    });
    if (k >= maxK || perClass.every((p) => p.length >= shots)) return { perClass, rounds };
    k = Math.min(maxK, k * 4);
  }
}
