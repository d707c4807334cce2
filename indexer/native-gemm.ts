// A Bᵀ through onnxruntime-node (MLAS, all cores) for the tuner's large products; the
// scoring core's JavaScript kernel stays the reference (tested equal within 1e-4).
import type { InferenceSession } from 'onnxruntime-common';
import { onnxruntimeNode } from '../models/load-model.js';
import type { Matrix } from '../core/linalg.js';
import type { Gemm } from '../core/scoring/tune.js';
import { GraphBuilder } from '../core/onnx/graph-builder.js';
import { DataType } from '../core/onnx/proto.js';

export async function nativeGemm(): Promise<Gemm> {
  const ort = await onnxruntimeNode();
  const g = new GraphBuilder('gemm_abt');
  const a = g.input('a', DataType.FLOAT, ['n', 'k']);
  const b = g.input('b', DataType.FLOAT, ['m', 'k']);
  g.output(g.op1('MatMul', [a, g.op1('Transpose', [b], { perm: [1, 0] })]), 'c', ['n', 'm']);
  const session: InferenceSession = await ort.InferenceSession.create(g.encode());
  return async (x: Matrix, y: Matrix): Promise<Matrix> => {
    const out = await session.run({ a: new ort.Tensor('float32', x.data, [x.rows, x.cols]), b: new ort.Tensor('float32', y.data, [y.rows, y.cols]) });
    return { data: out.c!.data as Float32Array, rows: x.rows, cols: y.rows };
  };
}
