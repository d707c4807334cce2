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
