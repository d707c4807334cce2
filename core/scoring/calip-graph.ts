// CALIP's two large products (S = Fs Wᵀ and Fs' = softmax_C(S) W) as an ONNX graph with the
// classifier baked in, run by onnxruntime (MLAS kernels, several times faster than our
// JavaScript loops). Same equations as calip.ts, which stays the reference it is tested against.
import type { InferenceSession } from 'onnxruntime-common';
import type { OrtModule } from '../encoders.js';
import { transpose, type Matrix } from '../linalg.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { DataType } from '../onnx/proto.js';
import type { CalipTerms } from './calip.js';

/** CALIP's terms computed outside JavaScript: this graph, or the engine (engine/engine.ts). */
export interface CalipProducts {
  terms(f: Float32Array, Fs: Matrix): Promise<CalipTerms>;
}

export class CalipGraph implements CalipProducts {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: InferenceSession,
    private readonly dim: number,
  ) {}

  static async create(ort: OrtModule, W: Matrix): Promise<CalipGraph> {
    const { rows: C, cols: D } = W;
    const g = new GraphBuilder('calip');
    const f = g.input('f', DataType.FLOAT, [1, D]);
    const Fs = g.input('Fs', DataType.FLOAT, ['hw', D]);
    const Wt = g.float('Wt', [D, C], transpose(W).data);
    const Wc = g.float('W', [C, D], W.data);
    const S = g.op1('Mul', [g.op1('MatMul', [Fs, Wt]), g.scalar(2)]); // [HW,C], temperature 2
    const fDotPatch = g.op1('MatMul', [Fs, g.op1('Transpose', [f], { perm: [1, 0] })]); // [HW,1]
    // f · Ft'_c = Σ_hw softmax_HW(S)[hw,c] (f · Fs[hw])
    const visualGuided = g.op1('MatMul', [g.op1('Transpose', [fDotPatch], { perm: [1, 0] }), g.op1('Softmax', [S], { axis: 0 })]); // [1,C]
    const FsPrime = g.op1('MatMul', [g.op1('Softmax', [S], { axis: 1 }), Wc]); // [HW,D]
    const fv = g.op1('Add', [g.op1('ReduceMean', [FsPrime], { axes: [0], keepdims: 1 }), g.op1('ReduceMax', [FsPrime], { axes: [0], keepdims: 1 })]);
    g.output(g.op1('MatMul', [f, Wt]), 'clip', [1, C]);
    g.output(visualGuided, 'visual_guided_text', [1, C]);
    g.output(g.op1('MatMul', [fv, Wt]), 'text_aware_visual', [1, C]);
    return new CalipGraph(ort, await ort.InferenceSession.create(g.encode()), D);
  }

  /** f: normalised image embedding [D]; Fs: normalised patch embeddings [HW,D]. */
  async terms(f: Float32Array, Fs: Matrix): Promise<CalipTerms> {
    const out = await this.session.run({ f: new this.ort.Tensor('float32', f, [1, this.dim]), Fs: new this.ort.Tensor('float32', Fs.data, [Fs.rows, this.dim]) });
    const get = (name: string) => out[name]!.data as Float32Array;
    return { clip: get('clip'), visualGuidedText: get('visual_guided_text'), textAwareVisual: get('text_aware_visual') };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
