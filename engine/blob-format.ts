// The engine's weight blobs, one per tower: one file, a 256-byte header with the dimensions,
// then every tensor in the order engine/clip_vit.c (clip_text.c) maps them (16-byte aligned). Linear layers are int8
// per output channel with f32 scale, f32 bias and the int32 row sums the activations' zero
// point needs. The layout does not depend on the kernel that will run it. This file is the
// format (read by the Worker too); weights.ts writes it from a checkpoint.

export type Activation = 'quick_gelu' | 'gelu' | 'gelu_new';

export const ENGINE_MAGIC = 0x45564f4e; // "NOVE"
export const ENGINE_VERSION = 1;
export const TEXT_MAGIC = 0x45544f4e; // "NOTE"
export const TEXT_ENGINE_VERSION = 1;
export const HEADER_BYTES = 256;
const ACTIVATIONS: Activation[] = ['quick_gelu', 'gelu', 'gelu_new'];

export interface EngineHeader {
  imageSize: number;
  patchSize: number;
  dim: number;
  hiddenDim: number;
  heads: number;
  layers: number;
  embedDim: number;
  act: Activation;
  eps: number;
  blobBytes: number;
}

export const align16 = (n: number) => Math.ceil(n / 16) * 16;
const qlinearBytes = (out: number, inDim: number) => align16(out * inDim) + 3 * align16(4 * out);
export const floatsBytes = (n: number) => align16(4 * n);
const layerBytes = (D: number, I: number) => 4 * floatsBytes(D) + 4 * qlinearBytes(D, D) + qlinearBytes(I, D) + qlinearBytes(D, I);

/** Bytes of the blob for these dimensions (the C side computes the same and checks it). */
export function blobBytes(h: Omit<EngineHeader, 'blobBytes' | 'act' | 'eps'>): number {
  const D = h.dim, T = (h.imageSize / h.patchSize) ** 2 + 1;
  return HEADER_BYTES + qlinearBytes(D, 3 * h.patchSize ** 2) + floatsBytes(D) + floatsBytes(T * D) + 2 * floatsBytes(D) + h.layers * layerBytes(D, h.hiddenDim) + 2 * floatsBytes(D) + qlinearBytes(h.embedDim, D);
}

/** Both towers' headers: magic, version, eight dimensions, the activation, eps, the blob's bytes. */
function writeWords(magic: number, version: number, dims: number[], act: Activation, eps: number, blobBytes: number): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  [magic, version, ...dims, ACTIVATIONS.indexOf(act)].forEach((v, i) => view.setInt32(4 * i, v, true));
  view.setFloat32(40, eps, true);
  view.setUint32(44, blobBytes, true);
  return bytes;
}

/** A header's words when its magic is `magic`: the version, the eight dimensions, activation, eps, bytes. */
function readWords(bytes: Uint8Array, magic: number): { version: number; dims: number[]; act: Activation; eps: number; blobBytes: number } | null {
  if (bytes.length < HEADER_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  if (view.getUint32(0, true) !== magic) return null;
  const int = (i: number) => view.getInt32(4 * i, true);
  return { version: int(1), dims: [2, 3, 4, 5, 6, 7, 8].map(int), act: ACTIVATIONS[int(9)] ?? 'quick_gelu', eps: view.getFloat32(40, true), blobBytes: view.getUint32(44, true) };
}

export function writeHeader(h: EngineHeader): Uint8Array {
  return writeWords(ENGINE_MAGIC, ENGINE_VERSION, [h.imageSize, h.patchSize, h.dim, h.hiddenDim, h.heads, h.layers, h.embedDim], h.act, h.eps, h.blobBytes);
}

/** Reads a blob's header; null when the magic is wrong. */
export function readHeader(bytes: Uint8Array): (EngineHeader & { version: number }) | null {
  const w = readWords(bytes, ENGINE_MAGIC);
  if (!w) return null;
  const [imageSize, patchSize, dim, hiddenDim, heads, layers, embedDim] = w.dims as [number, number, number, number, number, number, number];
  return { version: w.version, imageSize, patchSize, dim, hiddenDim, heads, layers, embedDim, act: w.act, eps: w.eps, blobBytes: w.blobBytes };
}

/** The text tower's header (clip_text.c's TextHeader). */
export interface TextEngineHeader {
  vocabSize: number;
  contextLength: number;
  dim: number;
  hiddenDim: number;
  heads: number;
  layers: number;
  embedDim: number;
  act: Activation;
  eps: number;
  blobBytes: number;
}

export function textBlobBytes(h: Omit<TextEngineHeader, 'blobBytes' | 'act' | 'eps'>): number {
  const D = h.dim;
  return HEADER_BYTES + qlinearBytes(h.vocabSize, D) + floatsBytes(h.contextLength * D) + h.layers * layerBytes(D, h.hiddenDim) + 2 * floatsBytes(D) + qlinearBytes(h.embedDim, D);
}

export function writeTextHeader(h: TextEngineHeader): Uint8Array {
  return writeWords(TEXT_MAGIC, TEXT_ENGINE_VERSION, [h.vocabSize, h.contextLength, h.dim, h.hiddenDim, h.heads, h.layers, h.embedDim], h.act, h.eps, h.blobBytes);
}

/** Reads a text blob's header; null when the magic is wrong. */
export function readTextHeader(bytes: Uint8Array): (TextEngineHeader & { version: number }) | null {
  const w = readWords(bytes, TEXT_MAGIC);
  if (!w) return null;
  const [vocabSize, contextLength, dim, hiddenDim, heads, layers, embedDim] = w.dims as [number, number, number, number, number, number, number];
  return { version: w.version, vocabSize, contextLength, dim, hiddenDim, heads, layers, embedDim, act: w.act, eps: w.eps, blobBytes: w.blobBytes };
}
