// safetensors: 8-byte little-endian header length, JSON header, then raw tensor bytes.
// We read F32/F16/BF16 into Float32Array; other dtypes (e.g. I64 position_ids buffers) are skipped.
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from '../core/half.js';

export type FloatDtype = 'F32' | 'F16' | 'BF16';

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  dtypes: Map<string, string>;
}

export class SafetensorsError extends Error {}

export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) throw new SafetensorsError('file is shorter than the 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8) throw new SafetensorsError(`header length ${headerLen} exceeds file size`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    throw new SafetensorsError('header is not valid JSON');
  }
  const base = 8 + headerLen;
  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, string>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [start, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    dtypes.set(name, info.dtype);
    const width = { F32: 4, F16: 2, BF16: 2 }[info.dtype];
    if (width === undefined) continue;
    if (end - start !== count * width || base + end > bytes.length) {
      throw new SafetensorsError(`tensor ${name}: byte range does not match shape ${JSON.stringify(info.shape)}`);
    }
    const data = new Float32Array(count);
    const at = base + start;
    if (info.dtype === 'F32') for (let i = 0; i < count; i++) data[i] = view.getFloat32(at + 4 * i, true);
    else if (info.dtype === 'F16') for (let i = 0; i < count; i++) data[i] = halfToFloat(view.getUint16(at + 2 * i, true));
    else for (let i = 0; i < count; i++) data[i] = bf16ToFloat(view.getUint16(at + 2 * i, true));
    tensors.set(name, { shape: info.shape, data });
  }
  return { tensors, dtypes };
}

export function writeSafetensors(tensors: Map<string, Tensor>, dtype: FloatDtype): Uint8Array {
  const width = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const size = t.data.length * width;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    for (let i = 0; i < d.length; i++, at += width) {
      if (dtype === 'F32') view.setFloat32(at, d[i]!, true);
      else view.setUint16(at, dtype === 'F16' ? floatToHalf(d[i]!) : floatToBf16(d[i]!), true);
    }
  }
  return out;
}
