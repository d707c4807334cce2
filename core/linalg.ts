// Dense row-major float32 matrices and the few kernels the scoring core needs.
// Plain loops with several accumulators: fast enough in V8 and in workerd, no deps.

export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

export function matrix(data: Float32Array, rows: number, cols: number): Matrix {
  if (data.length !== rows * cols) throw new Error(`matrix data has ${data.length} values, expected ${rows}x${cols}`);
  return { data, rows, cols };
}

export function dot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[aOff + i]! * b[bOff + i]!;
    s1 += a[aOff + i + 1]! * b[bOff + i + 1]!;
    s2 += a[aOff + i + 2]! * b[bOff + i + 2]!;
    s3 += a[aOff + i + 3]! * b[bOff + i + 3]!;
  }
  for (; i < n; i++) s0 += a[aOff + i]! * b[bOff + i]!;
  return s0 + s1 + s2 + s3;
}

/** L2-normalise every row (a zero row stays zero). */
export function normalizeRows(m: Matrix): Matrix {
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) {
    const off = r * m.cols;
    const norm = Math.sqrt(dot(m.data, off, m.data, off, m.cols));
    const inv = norm > 0 ? 1 / norm : 0;
    for (let c = 0; c < m.cols; c++) out[off + c] = m.data[off + c]! * inv;
  }
  return { data: out, rows: m.rows, cols: m.cols };
}

export function normalize(v: Float32Array): Float32Array {
  return normalizeRows({ data: v, rows: 1, cols: v.length }).data;
}

/** M v for row-major M [m,k] and v [k] -> [m]. */
export function matVec(m: Matrix, v: Float32Array): Float32Array {
  if (v.length !== m.cols) throw new Error(`matVec: vector of ${v.length}, matrix has ${m.cols} columns`);
  return matMulABt(m, { data: v, rows: 1, cols: v.length }).data;
}

/**
 * A Bᵀ for A [n,k], B [m,k] -> [n,m]. Register-blocked 4 rows of A × 2 rows of B:
 * each load feeds several multiply-adds, about twice as fast as plain dots in V8.
 */
export function matMulABt(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.cols) throw new Error(`matMulABt: inner dims ${a.cols} and ${b.cols} differ`);
  const K = a.cols, N = a.rows, R = b.rows, ad = a.data, bd = b.data;
  const out = new Float32Array(N * R);
  let i = 0;
  for (; i + 3 < N; i += 4) {
    const a0 = i * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
    let j = 0;
    for (; j + 1 < R; j += 2) {
      const b0 = j * K, b1 = b0 + K;
      let s00 = 0, s10 = 0, s20 = 0, s30 = 0, s01 = 0, s11 = 0, s21 = 0, s31 = 0;
      for (let t = 0; t < K; t++) {
        const x0 = bd[b0 + t]!, x1 = bd[b1 + t]!;
        const y0 = ad[a0 + t]!, y1 = ad[a1 + t]!, y2 = ad[a2 + t]!, y3 = ad[a3 + t]!;
        s00 += y0 * x0; s10 += y1 * x0; s20 += y2 * x0; s30 += y3 * x0;
        s01 += y0 * x1; s11 += y1 * x1; s21 += y2 * x1; s31 += y3 * x1;
      }
      out[i * R + j] = s00; out[(i + 1) * R + j] = s10; out[(i + 2) * R + j] = s20; out[(i + 3) * R + j] = s30;
      out[i * R + j + 1] = s01; out[(i + 1) * R + j + 1] = s11; out[(i + 2) * R + j + 1] = s21; out[(i + 3) * R + j + 1] = s31;
    }
    for (; j < R; j++) for (let r = 0; r < 4; r++) out[(i + r) * R + j] = dot(ad, (i + r) * K, bd, j * K, K);
  }
  for (; i < N; i++) {
    // Remaining rows of A (and matrix-vector products): 4 rows of B per pass over the A row.
    const ao = i * K;
    let j = 0;
    for (; j + 3 < R; j += 4) {
      const b0 = j * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let t = 0; t < K; t++) {
        const y = ad[ao + t]!;
        s0 += y * bd[b0 + t]!; s1 += y * bd[b1 + t]!; s2 += y * bd[b2 + t]!; s3 += y * bd[b3 + t]!;
      }
      out[i * R + j] = s0; out[i * R + j + 1] = s1; out[i * R + j + 2] = s2; out[i * R + j + 3] = s3;
    }
    for (; j < R; j++) out[i * R + j] = dot(ad, ao, bd, j * K, K);
  }
  return { data: out, rows: N, cols: R };
}

/** Mᵀ as a new row-major matrix. */
export function transpose(m: Matrix): Matrix {
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) for (let c = 0; c < m.cols; c++) out[c * m.rows + r] = m.data[r * m.cols + c]!;
  return { data: out, rows: m.cols, cols: m.rows };
}

/** Softmax of x[off .. off+n) * scale, in place. */
export function softmaxInPlace(x: Float32Array | Float64Array, off: number, n: number, scale = 1): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[off + i]! * scale);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[off + i]! * scale - max);
    x[off + i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) x[off + i]! /= sum;
}

/** log softmax(x * scale) as a new array. */
export function logSoftmax(x: Float32Array, scale = 1): Float32Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v * scale);
  let sum = 0;
  for (const v of x) sum += Math.exp(v * scale - max);
  const lse = max + Math.log(sum);
  return x.map((v) => v * scale - lse);
}

export function argmax(x: ArrayLike<number>, off = 0, n = x.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[off + i]! > x[off + best]!) best = i;
  return best;
}
