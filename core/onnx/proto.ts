// Minimal ONNX protobuf writer. We build every graph ourselves from checkpoint
// tensors, so we only need to *encode* the handful of messages a model uses.
// Field numbers follow onnx/onnx.proto (proto2; repeated scalars written unpacked).

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

export interface TensorProto {
  name: string;
  dataType: DataTypeCode;
  dims: number[];
  raw: Uint8Array;
}

export type AttributeValue = number | number[] | string | TensorProto | { float: number } | { floats: number[] };

export interface NodeProto {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes: Record<string, AttributeValue>;
  domain?: string;
}

export interface ValueInfo {
  name: string;
  elemType: DataTypeCode;
  shape: (number | string)[];
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface ModelProto {
  graph: GraphProto;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  metadata: Record<string, string>;
}

/** Append-only byte sink producing protobuf wire format. */
class Writer {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(256);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = new Uint8Array(Math.max(n, 256));
  }
  private flush(): void {
    if (this.pos > 0) this.chunks.push(this.buf.slice(0, this.pos));
    this.pos = 0;
  }
  varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }
  bytes(data: Uint8Array): void {
    // Large payloads (weights) are kept by reference, not copied.
    if (data.length > 4096) {
      this.flush();
      this.chunks.push(data);
    } else {
      this.ensure(data.length);
      this.buf.set(data, this.pos);
      this.pos += data.length;
    }
  }
  private total(): number {
    let n = this.pos;
    for (const c of this.chunks) n += c.length;
    return n;
  }
  key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  int(field: number, value: number | bigint): void {
    this.key(field, 0);
    this.varint(value);
  }
  float(field: number, value: number): void {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.bytes(b);
  }
  string(field: number, value: string): void {
    this.lenDelimited(field, new TextEncoder().encode(value));
  }
  lenDelimited(field: number, data: Uint8Array): void {
    this.key(field, 2);
    this.varint(data.length);
    this.bytes(data);
  }
  message(field: number, build: (w: Writer) => void): void {
    const inner = new Writer();
    build(inner);
    this.key(field, 2);
    this.varint(inner.byteLength());
    this.flush();
    this.chunks.push(...inner.parts());
  }
  byteLength(): number {
    return this.total();
  }
  parts(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }
  finish(): Uint8Array {
    const parts = this.parts();
    const out = new Uint8Array(this.total());
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

function writeTensor(w: Writer, t: TensorProto): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.lenDelimited(9, t.raw);
}

function writeAttribute(w: Writer, name: string, value: AttributeValue): void {
  w.string(1, name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use {float: x} for floats`);
    w.int(3, value);
    w.int(20, 2); // INT
  } else if (typeof value === 'string') {
    w.lenDelimited(4, new TextEncoder().encode(value));
    w.int(20, 3); // STRING
  } else if (Array.isArray(value)) {
    for (const v of value) w.int(8, v);
    w.int(20, 7); // INTS
  } else if ('float' in value) {
    w.float(2, value.float);
    w.int(20, 1); // FLOAT
  } else if ('floats' in value) {
    for (const v of value.floats) w.float(7, v);
    w.int(20, 6); // FLOATS
  } else {
    w.message(5, (m) => writeTensor(m, value));
    w.int(20, 4); // TENSOR
  }
}

function writeValueInfo(w: Writer, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

export function encodeModel(model: ModelProto): Uint8Array {
  const w = new Writer();
  w.int(1, 8); // ir_version 8 (ONNX 1.13+, opset 17)
  w.string(2, model.producerName);
  w.string(3, model.producerVersion);
  w.message(7, (g) => {
    for (const n of model.graph.nodes) {
      g.message(1, (m) => {
        for (const i of n.inputs) m.string(1, i);
        for (const o of n.outputs) m.string(2, o);
        m.string(3, n.name);
        m.string(4, n.opType);
        for (const [k, v] of Object.entries(n.attributes)) m.message(5, (a) => writeAttribute(a, k, v));
        if (n.domain) m.string(7, n.domain);
      });
    }
    g.string(2, model.graph.name);
    for (const t of model.graph.initializers) g.message(5, (m) => writeTensor(m, t));
    for (const v of model.graph.inputs) g.message(11, (m) => writeValueInfo(m, v));
    for (const v of model.graph.outputs) g.message(12, (m) => writeValueInfo(m, v));
  });
  w.message(8, (o) => {
    o.string(1, '');
    o.int(2, model.opsetVersion);
  });
  for (const [key, value] of Object.entries(model.metadata)) {
    w.message(14, (m) => {
      m.string(1, key);
      m.string(2, value);
    });
  }
  return w.finish();
}
