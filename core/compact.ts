// Compact storage of index matrices: fp16, or 8-bit per row with a scale (and offset).
import { floatToHalf, halfToFloat } from './half.js';
import type { Matrix } from './linalg.js';

export function toFloat16(values: Float32Array): Uint16Array {
  return Uint16Array.from(values, floatToHalf);
}

export function fromFloat16(values: Uint16Array): Float32Array {
  return Float32Array.from(values, halfToFloat);
}

/** Per-row affine uint8: v ≈ offset_r + scale_r·u (suits log-probabilities, all ≤ 0). */
export interface RowsU8 {
  values: Uint8Array;
  offsets: Float32Array;
  scales: Float32Array;
  rows: number;
  cols: number;
}

export function quantizeRowsU8(m: Matrix): RowsU8 {
  const values = new Uint8Array(m.rows * m.cols);
  const offsets = new Float32Array(m.rows);
  const scales = new Float32Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let lo = Infinity, hi = -Infinity;
    for (let c = 0; c < m.cols; c++) {
      const v = m.data[r * m.cols + c]!;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const scale = hi > lo ? (hi - lo) / 255 : 1;
    offsets[r] = lo;
    scales[r] = scale;
    for (let c = 0; c < m.cols; c++) values[r * m.cols + c] = Math.round((m.data[r * m.cols + c]! - lo) / scale);
  }
  return { values, offsets, scales, rows: m.rows, cols: m.cols };
}

export function dequantizeRowsU8(q: RowsU8): Matrix {
  const data = new Float32Array(q.rows * q.cols);
  for (let r = 0; r < q.rows; r++) for (let c = 0; c < q.cols; c++) data[r * q.cols + c] = q.offsets[r]! + q.scales[r]! * q.values[r * q.cols + c]!;
  return { data, rows: q.rows, cols: q.cols };
}

/** For each row r: Σ_c v_c · row_r[c] = offset_r · Σv + scale_r · Σ_c v_c u_rc, straight from the bytes. */
export function rowsU8Dot(q: RowsU8, v: Float32Array): Float32Array {
  if (v.length !== q.cols) throw new Error(`rowsU8Dot: vector of ${v.length}, rows of ${q.cols}`);
  let vSum = 0;
  for (const x of v) vSum += x;
  const out = new Float32Array(q.rows);
  const u = q.values, C = q.cols;
  for (let r = 0; r < q.rows; r++) {
    const o = r * C;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, c = 0;
    for (; c + 3 < C; c += 4) {
      s0 += v[c]! * u[o + c]!;
      s1 += v[c + 1]! * u[o + c + 1]!;
      s2 += v[c + 2]! * u[o + c + 2]!;
      s3 += v[c + 3]! * u[o + c + 3]!;
    }
    for (; c < C; c++) s0 += v[c]! * u[o + c]!;
    out[r] = q.offsets[r]! * vSum + q.scales[r]! * (s0 + s1 + s2 + s3);
  }
  return out;
}
