/**
 * The ONNX writer under src/export/onnx.ts: the protobuf wire format (written by hand: the graph
 * needs a dozen message types) and a graph builder whose layers are vit-wasm's (a linear layer,
 * f32 or dynamically quantized; a layernorm), their initializers read out of wasm memory.
 */
import { type Linear, linearWeight, type Norm } from '../nn/weights.js';
import type { WasmMemory } from '../runtime/memory.js';
import { quantizeRows } from '../runtime/pack.js';

// ---- protobuf wire format ----
export class Pb {
  private parts: Uint8Array[] = [];
  private size = 0;
  private push(b: Uint8Array) {
    this.parts.push(b);
    this.size += b.length;
  }
  private varint(v: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x) byte |= 0x80;
      out.push(byte);
    } while (x);
    this.push(Uint8Array.from(out));
  }
  private key(field: number, wire: number) {
    this.varint((field << 3) | wire);
  }
  int(field: number, v: number) {
    this.key(field, 0);
    this.varint(v);
    return this;
  }
  bytes(field: number, b: Uint8Array) {
    this.key(field, 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }
  str(field: number, s: string) {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb) {
    return this.bytes(field, m.done());
  }
  float(field: number, v: number) {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

const FLOAT = 1,
  INT8 = 3,
  INT64 = 7;

function tensor(name: string, dims: number[], data: Float32Array | BigInt64Array | Int8Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  t.int(2, data instanceof Float32Array ? FLOAT : data instanceof Int8Array ? INT8 : INT64).str(8, name);
  return t.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

export type Attr = number | number[] | string;
export function node(op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}): Pb {
  const n = new Pb();
  for (const i of inputs) n.str(1, i);
  for (const o of outputs) n.str(2, o);
  n.str(3, `${op}_${outputs[0]}`).str(4, op);
  for (const [name, v] of Object.entries(attrs)) {
    const a = new Pb().str(1, name);
    if (Array.isArray(v)) {
      for (const x of v) a.int(8, x);
      a.int(20, 7);
    } else if (typeof v === 'string') a.bytes(4, new TextEncoder().encode(v)).int(20, 3);
    else if (Number.isInteger(v) && name !== 'epsilon') a.int(3, v).int(20, 2);
    else a.float(2, v).int(20, 1);
    n.msg(5, a);
  }
  return n;
}

export function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === 'string' ? new Pb().str(2, d) : new Pb().int(1, d));
  return new Pb().str(1, name).msg(2, new Pb().msg(1, new Pb().int(1, elemType).msg(2, shape)));
}

/** An ONNX graph under construction: initializers (written as they are made) and nodes, in order. */
export class Graph {
  readonly g = new Pb().str(2, 'vit');
  readonly nodes: Pb[] = [];
  private readonly inits = new Set<string>();

  constructor(
    readonly mem: WasmMemory,
    private readonly int8: boolean,
    private readonly eps: number,
    /** Heads and tokens of the attention: [H, T]. */
    readonly hw: readonly [number, number],
  ) {}

  init(name: string, dims: number[], data: Float32Array | BigInt64Array | Int8Array): string {
    this.g.msg(5, tensor(name, dims, data));
    this.inits.add(name);
    return name;
  }
  readonly has = (name: string): boolean => this.inits.has(name);
  f32(ptr: number, n: number): Float32Array {
    return this.mem.f32(ptr, n).slice();
  }
  ints(name: string, v: number[]): string {
    return this.init(name, [v.length], BigInt64Array.from(v, BigInt));
  }
  scalarInt(name: string, v: number): string {
    return this.init(name, [], BigInt64Array.of(BigInt(v)));
  }
  scalar(name: string, v: number): string {
    return this.init(name, [], Float32Array.of(v));
  }
  op(type: string, inputs: string[], out: string, attrs?: Record<string, Attr>): string {
    this.nodes.push(node(type, inputs, [out], attrs));
    return out;
  }

  /** y = x · Wᵀ + b, with Wᵀ stored as a (K, N) initializer. */
  linear(x: string, l: Linear, name: string): string {
    const wd = linearWeight(this.mem, l);
    if (this.int8) return this.linearInt8(x, l, name, wd);
    const wt = new Float32Array(l.K * l.N);
    for (let n = 0; n < l.N; n++) for (let k = 0; k < l.K; k++) wt[k * l.N + n] = wd[n * l.K + k];
    return this.op(
      'Add',
      [
        this.op('MatMul', [x, this.init(`${name}.wt`, [l.K, l.N], wt)], `${name}.mm`),
        this.init(`${name}.b`, [l.N], this.f32(l.b, l.N)),
      ],
      name,
    );
  }

  /** The same, dynamically quantized: y = (x_q − x_zp) · W_qᵀ · (x_scale · w_scale) + b. */
  private linearInt8(x: string, l: Linear, name: string, wd: Float32Array): string {
    const { q, scale } = quantizeRows(wd, l.N, l.K);
    const qt = new Int8Array(l.K * l.N);
    for (let n = 0; n < l.N; n++) for (let k = 0; k < l.K; k++) qt[k * l.N + n] = q[n * l.K + k];
    this.nodes.push(node('DynamicQuantizeLinear', [x], [`${name}.xq`, `${name}.xs`, `${name}.xz`]));
    const mm = this.op(
      'MatMulInteger',
      [
        `${name}.xq`,
        this.init(`${name}.wq`, [l.K, l.N], qt),
        `${name}.xz`,
        this.init(`${name}.wz`, [], Int8Array.of(0)),
      ],
      `${name}.mmi`,
    );
    const s = this.op('Mul', [`${name}.xs`, this.init(`${name}.ws`, [l.N], scale)], `${name}.s`);
    return this.op(
      'Add',
      [
        this.op('Mul', [this.op('Cast', [mm], `${name}.mmf`, { to: FLOAT }), s], `${name}.mm`),
        this.init(`${name}.b`, [l.N], this.f32(l.b, l.N)),
      ],
      name,
    );
  }

  /** The ModelProto (opset 17) of the nodes so far, with one input and one output (valueInfo). */
  serialise(input: Pb, output: Pb): Uint8Array {
    for (const n of this.nodes) this.g.msg(1, n);
    this.g.msg(11, input);
    this.g.msg(12, output);
    return new Pb()
      .int(1, 8)
      .str(2, 'vit-wasm')
      .str(3, '0.1.0')
      .msg(7, this.g)
      .msg(8, new Pb().str(1, '').int(2, 17))
      .done();
  }

  norm(x: string, n: Norm, name: string, D: number): string {
    return this.op(
      'LayerNormalization',
      [x, this.init(`${name}.g`, [D], this.f32(n.g, D)), this.init(`${name}.b`, [D], this.f32(n.b, D))],
      name,
      { axis: -1, epsilon: this.eps },
    );
  }
}
