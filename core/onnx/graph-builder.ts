// A small helper for writing ONNX graphs by hand: names values, holds initializers,
// and offers the few composite layers CLIP needs (linear, layer norm, activations).
import { DataType, encodeModel, type AttributeValue, type DataTypeCode, type NodeProto, type TensorProto, type ValueInfo } from './proto.js';

export const OPSET = 17; // LayerNormalization is an ONNX op from opset 17.

export type LinearMode = 'fp32' | 'uint8';

export class GraphBuilder {
  private nodes: NodeProto[] = [];
  private initializers: TensorProto[] = [];
  private counter = 0;
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  /** Bytes of weights stored, for the memory estimate. */
  weightBytes = 0;

  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, nOut = 1, domain?: string): string[] {
    const outputs = Array.from({ length: nOut }, () => this.fresh(opType));
    this.nodes.push({ opType, inputs, outputs, name: this.fresh(`n_${opType}`), attributes, domain });
    return outputs;
  }
  op1(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    return this.op(opType, inputs, attributes)[0]!;
  }

  tensor(hint: string, dataType: DataTypeCode, dims: number[], data: Float32Array | Uint8Array | BigInt64Array | Int32Array): string {
    const name = this.fresh(hint);
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name, dataType, dims, raw });
    this.weightBytes += raw.byteLength;
    return name;
  }
  float(hint: string, dims: number[], data: Float32Array): string {
    return this.tensor(hint, DataType.FLOAT, dims, data);
  }
  scalar(value: number): string {
    return this.float('c', [], Float32Array.of(value));
  }
  ints(values: number[]): string {
    return this.tensor('shape', DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt)));
  }

  input(name: string, elemType: DataTypeCode, shape: (number | string)[]): string {
    this.inputs.push({ name, elemType, shape });
    return name;
  }
  output(value: string, name: string, shape: (number | string)[]): void {
    this.nodes.push({ opType: 'Identity', inputs: [value], outputs: [name], name: this.fresh('n_out'), attributes: {} });
    this.outputs.push({ name, elemType: DataType.FLOAT, shape });
  }

  /** y = x Wᵀ + b with an HF-layout weight [out, in]. */
  linear(x: string, weight: Float32Array, outDim: number, bias: Float32Array | null, mode: LinearMode): string {
    const inDim = weight.length / outDim;
    const wt = new Float32Array(inDim * outDim); // [in, out]
    for (let o = 0; o < outDim; o++) for (let i = 0; i < inDim; i++) wt[i * outDim + o] = weight[o * inDim + i]!;
    let y: string;
    if (mode === 'fp32') {
      y = this.op1('MatMul', [x, this.float('W', [inDim, outDim], wt)]);
    } else {
      // Dynamic U8U8 quantisation: per-column asymmetric uint8 weights, activations
      // quantised per call. Unsigned weights keep x86 onnxruntime-node and WASM in
      // agreement (their U8S8 kernels differ).
      const q = quantizeColumnsU8(wt, inDim, outDim);
      const wq = this.tensor('Wq', DataType.UINT8, [inDim, outDim], q.values);
      const wzp = this.tensor('Wzp', DataType.UINT8, [outDim], q.zeroPoints);
      const [xq, xs, xzp] = this.op('DynamicQuantizeLinear', [x], {}, 3) as [string, string, string];
      const acc = this.op1('Cast', [this.op1('MatMulInteger', [xq, wq, xzp, wzp])], { to: DataType.FLOAT });
      y = this.op1('Mul', [acc, this.op1('Mul', [xs, this.float('Ws', [outDim], q.scales)])]);
    }
    return bias ? this.op1('Add', [y, this.float('b', [outDim], Float32Array.from(bias))]) : y;
  }

  layerNorm(x: string, gamma: Float32Array, beta: Float32Array, eps: number): string {
    return this.op1('LayerNormalization', [x, this.float('ln_g', [gamma.length], gamma), this.float('ln_b', [beta.length], beta)], { axis: -1, epsilon: { float: eps } });
  }

  activation(x: string, act: 'quick_gelu' | 'gelu' | 'gelu_new'): string {
    if (act === 'quick_gelu') return this.op1('Mul', [x, this.op1('Sigmoid', [this.op1('Mul', [x, this.scalar(1.702)])])]);
    if (act === 'gelu') {
      const erf = this.op1('Erf', [this.op1('Div', [x, this.scalar(Math.SQRT2)])]);
      return this.op1('Mul', [this.op1('Mul', [x, this.scalar(0.5)]), this.op1('Add', [erf, this.scalar(1)])]);
    }
    const cube = this.op1('Mul', [this.op1('Mul', [x, x]), x]);
    const inner = this.op1('Mul', [this.op1('Add', [x, this.op1('Mul', [cube, this.scalar(0.044715)])]), this.scalar(Math.sqrt(2 / Math.PI))]);
    return this.op1('Mul', [this.op1('Mul', [x, this.scalar(0.5)]), this.op1('Add', [this.op1('Tanh', [inner]), this.scalar(1)])]);
  }

  encode(metadata: Record<string, string> = {}): Uint8Array {
    return encodeModel({
      graph: { name: this.name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs },
      opsetVersion: OPSET,
      producerName: 'nameonly',
      producerVersion: '0.1.0',
      metadata,
    });
  }
}

/** Asymmetric per-column uint8: w ≈ (q − zp)·scale, range widened to include 0. */
export function quantizeColumnsU8(wt: Float32Array, rows: number, cols: number): { values: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array } {
  const values = new Uint8Array(rows * cols);
  const scales = new Float32Array(cols);
  const zeroPoints = new Uint8Array(cols);
  for (let c = 0; c < cols; c++) {
    let lo = 0, hi = 0;
    for (let r = 0; r < rows; r++) {
      const v = wt[r * cols + c]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const scale = hi > lo ? (hi - lo) / 255 : 1;
    const zp = Math.min(255, Math.max(0, Math.round(-lo / scale)));
    scales[c] = scale;
    zeroPoints[c] = zp;
    for (let r = 0; r < rows; r++) values[r * cols + c] = Math.min(255, Math.max(0, Math.round(wt[r * cols + c]! / scale) + zp));
  }
  return { values, scales, zeroPoints };
}
