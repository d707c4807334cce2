// TIP-X's pass over the support features, F·[f; Wᵀp]ᵀ [M,2], as an ONNX graph with F baked
// in, run by onnxruntime. Same product as tipx.ts computes in JavaScript (its reference).
import type { InferenceSession } from 'onnxruntime-common';
import type { OrtModule } from '../encoders.js';
import type { Matrix } from '../linalg.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { DataType } from '../onnx/proto.js';

/** Computes F·[f; Wᵀp]ᵀ [M,2] for TIP-X: this graph, or the engine's half-precision kernel. */
export interface SupportProducts {
  products(probes: Matrix): Promise<Float32Array>;
}

export class SupportGraph implements SupportProducts {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: InferenceSession,
    private readonly dim: number,
  ) {}

  static async create(ort: OrtModule, features: Matrix): Promise<SupportGraph> {
    const g = new GraphBuilder('tipx_support');
    const probes = g.input('probes', DataType.FLOAT, [2, features.cols]);
    const F = g.float('F', [features.rows, features.cols], features.data);
    g.output(g.op1('MatMul', [F, g.op1('Transpose', [probes], { perm: [1, 0] })]), 'products', [features.rows, 2]);
    return new SupportGraph(ort, await ort.InferenceSession.create(g.encode()), features.cols);
  }

  async products(probes: Matrix): Promise<Float32Array> {
    const out = await this.session.run({ probes: new this.ort.Tensor('float32', probes.data, [2, this.dim]) });
    return out.products!.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
