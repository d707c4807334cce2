// Compact storage of index matrices: fp16.
import { floatToHalf, halfToFloat } from './half.js';

export function toFloat16(values: Float32Array): Uint16Array {
  return Uint16Array.from(values, floatToHalf);
}

export function fromFloat16(values: Uint16Array): Float32Array {
  return Float32Array.from(values, halfToFloat);
}
