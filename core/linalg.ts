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

export function row(m: Matrix, i: number): Float32Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
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
  const out = new Float32Array(m.rows);
  for (let r = 0; r < m.rows; r++) out[r] = dot(m.data, r * m.cols, v, 0, m.cols);
  return out;
}

/** A Bᵀ for A [n,k], B [m,k] -> [n,m]. */
export function matMulABt(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.cols) throw new Error(`matMulABt: inner dims ${a.cols} and ${b.cols} differ`);
  const out = new Float32Array(a.rows * b.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < b.rows; j++) out[i * b.rows + j] = dot(a.data, i * a.cols, b.data, j * b.cols, a.cols);
  return { data: out, rows: a.rows, cols: b.rows };
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
