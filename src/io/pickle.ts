/**
 * A restricted unpickler for PyTorch state dicts: the threat model of torch.load(weights_only=True).
 * It runs pickle's stack machine (protocols 2 to 5) over the opcodes a state dict is written with,
 * and knows only the globals a state dict needs: collections.OrderedDict, torch's tensor and
 * parameter rebuilds, and the storage types. Any other global (os.system, builtins.eval, a
 * model class…) is refused by name before anything is called; nothing is ever executed. Values are
 * plain data: null, booleans, numbers (bigint past 2^53), strings, bytes, lists, tuples, Maps
 * (dicts), and Storage / TensorRef records for what torch's rebuilds describe. It never recurses,
 * so nesting costs no stack; memory is bounded by the pickle's own size.
 */

/** A storage a persistent id names: its element type, its key (the zip entry data/KEY), its element count. */
export interface Storage {
  kind: 'storage';
  dtype: string;
  key: string;
  numel: number;
}

/** A tensor torch._utils._rebuild_tensor_v2 describes: a view of `storage` (offset and strides in elements). */
export interface TensorRef {
  kind: 'tensor';
  storage: Storage;
  offset: number;
  shape: number[];
  stride: number[];
}

/** A Python tuple (lists are plain arrays). */
export class Tuple {
  constructor(readonly items: PyValue[]) {}
}

/** A global the unpickler allows, by its dotted name. */
class Global {
  constructor(readonly name: string) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Tuple
  | Map<PyValue, PyValue>
  | Storage
  | TensorRef
  | Global;

/** torch's storage types and the element type each holds (the dtype names of safetensors). */
export const STORAGE_DTYPES: Readonly<Record<string, string>> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const ALLOWED = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

/** Pickle's machine over one pickle: its stack, its memo, where it reads, and the reads themselves. */
class Machine {
  readonly stack: Slot[] = [];
  readonly memo = new Map<number, PyValue>();
  at = 0;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    private readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(msg: string): never {
    throw new Error(`vit-wasm: ${this.file}: ${msg}`);
  }
  /** The offset of the next n bytes, consumed. */
  need(n: number): number {
    if (this.at + n > this.bytes.length) this.fail(`truncated pickle (needs ${n} more bytes at byte ${this.at})`);
    const s = this.at;
    this.at += n;
    return s;
  }
  u8 = () => this.bytes[this.need(1)];
  u16 = () => this.view.getUint16(this.need(2), true);
  u32 = () => this.view.getUint32(this.need(4), true);
  i32 = () => this.view.getInt32(this.need(4), true);
  u64 = () => Number(this.view.getBigUint64(this.need(8), true));
  f64 = () => this.view.getFloat64(this.need(8), false);
  text = (n: number) => new TextDecoder().decode(this.bytes.subarray(this.need(n), this.at));
  /** A GLOBAL's text line. */
  line(): string {
    const end = this.bytes.indexOf(10, this.at);
    if (end < 0) this.fail('truncated pickle (a GLOBAL without its newline)');
    const s = new TextDecoder().decode(this.bytes.subarray(this.at, end));
    this.at = end + 1;
    return s;
  }
  push = (v: Slot) => this.stack.push(v);
  pop(): PyValue {
    const v = this.stack.pop();
    if (v === undefined || v === MARK) this.fail('malformed pickle (pops an empty stack or a mark)');
    return v as PyValue;
  }
  top(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) this.fail('malformed pickle (no value on the stack)');
    return v as PyValue;
  }
  /** The values above the last mark, the mark removed. */
  popMark(): PyValue[] {
    const i = this.stack.lastIndexOf(MARK);
    if (i < 0) this.fail('malformed pickle (no mark)');
    const items = this.stack.splice(i) as PyValue[];
    items.shift();
    return items;
  }
  global(name: string): Global {
    if (!ALLOWED.has(name))
      this.fail(
        `the pickle asks for the Python global '${name}', which a state dict never needs: refused (vit-wasm reads tensors, dicts, lists, tuples, numbers and strings only; it runs no Python code)`,
      );
    return new Global(name);
  }
  dict(op: string): Map<PyValue, PyValue> {
    const v = this.top();
    if (!(v instanceof Map)) this.fail(`malformed pickle (${op} on a ${kindOf(v)}, not a dict)`);
    return v as Map<PyValue, PyValue>;
  }
  list(op: string): PyValue[] {
    const v = this.top();
    if (!Array.isArray(v)) this.fail(`malformed pickle (${op} on a ${kindOf(v)}, not a list)`);
    return v as PyValue[];
  }
  /** A dict key: a state dict's are strings (a checkpoint's other dicts: strings and numbers). */
  key(k: PyValue): PyValue {
    return k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k)
      ? k
      : this.fail(`a dict key of type ${kindOf(k)} (a state dict's keys are strings)`);
  }
  /** Pairs (key, value, key, value…) into `d`. */
  setItems(d: Map<PyValue, PyValue>, items: PyValue[]): void {
    if (items.length % 2) this.fail('malformed pickle (SETITEMS with an odd count)');
    for (let i = 0; i < items.length; i += 2) d.set(this.key(items[i]), items[i + 1]);
  }
  tuple(n: number): void {
    if (this.stack.length < n) this.fail('malformed pickle (a tuple of missing values)');
    const items: PyValue[] = [];
    for (let i = 0; i < n; i++) items.unshift(this.pop());
    this.push(new Tuple(items));
  }
  memoGet(i: number): void {
    if (!this.memo.has(i)) this.fail(`malformed pickle (memo ${i} was never stored)`);
    this.push(this.memo.get(i) as PyValue);
  }
}

/** LONG1's n bytes: a little-endian two's complement integer, a number where it is safe. */
function long1(m: Machine): number | bigint {
  const n = m.u8(),
    s = m.need(n);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(m.bytes[s + i]);
  if (n && m.bytes[s + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Each opcode a state dict is written with (protocols 2 to 5), by its byte; STOP is the loop's. */
const OPS: Readonly<Record<number, (m: Machine) => void>> = {
  128: (m) => m.u8() > 5 && m.fail('a pickle protocol above 5'), // PROTO
  149: (m) => m.need(8), // FRAME: its length; its opcodes follow as usual
  40: (m) => m.push(MARK),
  78: (m) => m.push(null), // NONE
  136: (m) => m.push(true), // NEWTRUE
  137: (m) => m.push(false), // NEWFALSE
  75: (m) => m.push(m.u8()), // BININT1
  77: (m) => m.push(m.u16()), // BININT2
  74: (m) => m.push(m.i32()), // BININT
  138: (m) => m.push(long1(m)), // LONG1
  71: (m) => m.push(m.f64()), // BINFLOAT (big-endian)
  88: (m) => m.push(m.text(m.u32())), // BINUNICODE
  140: (m) => m.push(m.text(m.u8())), // SHORT_BINUNICODE
  141: (m) => m.push(m.text(m.u64())), // BINUNICODE8
  85: (m) => m.push(m.text(m.u8())), // SHORT_BINSTRING (Python 2's str)
  84: (m) => m.push(m.text(m.u32())), // BINSTRING
  67: (m) => m.push(m.bytes.slice(m.need(m.bytes[m.need(1)]), m.at)), // SHORT_BINBYTES
  66: (m) => m.push(m.bytes.slice(m.need(m.u32()), m.at)), // BINBYTES
  125: (m) => m.push(new Map()), // EMPTY_DICT
  93: (m) => m.push([]), // EMPTY_LIST
  41: (m) => m.push(new Tuple([])), // EMPTY_TUPLE
  133: (m) => m.tuple(1), // TUPLE1
  134: (m) => m.tuple(2), // TUPLE2
  135: (m) => m.tuple(3), // TUPLE3
  116: (m) => m.push(new Tuple(m.popMark())), // TUPLE
  108: (m) => m.push(m.popMark()), // LIST
  100: (m) => {
    // DICT
    const d = new Map<PyValue, PyValue>();
    m.setItems(d, m.popMark());
    m.push(d);
  },
  97: (m) => {
    // APPEND
    const v = m.pop();
    m.list('APPEND').push(v);
  },
  101: (m) => {
    // APPENDS
    const items = m.popMark(),
      list = m.list('APPENDS');
    for (const v of items) list.push(v);
  },
  115: (m) => {
    // SETITEM
    const v = m.pop(),
      k = m.pop();
    m.setItems(m.dict('SETITEM'), [k, v]);
  },
  117: (m) => {
    // SETITEMS
    const items = m.popMark();
    m.setItems(m.dict('SETITEMS'), items);
  },
  113: (m) => m.memo.set(m.u8(), m.top()), // BINPUT
  114: (m) => m.memo.set(m.u32(), m.top()), // LONG_BINPUT
  148: (m) => m.memo.set(m.memo.size, m.top()), // MEMOIZE
  104: (m) => m.memoGet(m.u8()), // BINGET
  106: (m) => m.memoGet(m.u32()), // LONG_BINGET
  99: (m) => {
    // GLOBAL: "module\nname\n"
    const module = m.line();
    m.push(m.global(`${module}.${m.line()}`));
  },
  147: (m) => {
    // STACK_GLOBAL
    const name = m.pop(),
      module = m.pop();
    if (typeof module !== 'string' || typeof name !== 'string')
      m.fail('malformed pickle (STACK_GLOBAL of non-strings)');
    m.push(m.global(`${module}.${name}`));
  },
  82: (m) => {
    // REDUCE: callable(*args), for the allowed callables only
    const args = m.pop(),
      f = m.pop();
    if (!(f instanceof Global) || !(args instanceof Tuple)) m.fail(`malformed pickle (REDUCE of a ${kindOf(f)})`);
    m.push(call(f as Global, (args as Tuple).items, (msg) => m.fail(msg)));
  },
  98: (m) => {
    // BUILD: an object's state; a dict's (an OrderedDict's _metadata) changes none of its items
    m.pop();
    if (!(m.top() instanceof Map)) m.fail(`malformed pickle (BUILD on a ${kindOf(m.top())})`);
  },
  81: (m) => m.push(storageOf(m.pop(), (msg) => m.fail(msg))), // BINPERSID: torch's storage
};

/**
 * The value `bytes` (a data.pkl) pickles, or an Error naming `file` and what is wrong: an
 * opcode a state dict is not written with, a global other than those above, a truncated pickle.
 */
export function unpickle(bytes: Uint8Array, file: string): PyValue {
  const m = new Machine(bytes, file);
  for (;;) {
    const op = m.u8();
    if (op === 0x2e) {
      // STOP
      if (m.stack.length !== 1) m.fail('malformed pickle (STOP with other than one value)');
      return m.pop();
    }
    const run = OPS[op];
    if (!run)
      m.fail(
        `pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${m.at - 1} is not one a state dict is written with: refused`,
      );
    run(m);
  }
}

/** What kind of value `v` is, for messages. */
function kindOf(v: PyValue | undefined): string {
  if (v === null) return 'None';
  if (v instanceof Tuple) return 'tuple';
  if (v instanceof Map) return 'dict';
  if (v instanceof Global) return `global ${v.name}`;
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return v.kind;
  return typeof v;
}

const isInt = (v: PyValue) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The storage a persistent id names. */
function storageOf(pid: PyValue, fail: (m: string) => never): Storage {
  const t = pid instanceof Tuple ? pid.items : [];
  const [tag, type, key, , numel] = t;
  if (t.length !== 5 || tag !== 'storage' || !(type instanceof Global) || typeof key !== 'string' || !isInt(numel))
    fail(`a persistent id other than torch's ('storage', type, key, location, numel): ${kindOf(pid)}`);
  const dtype = STORAGE_DTYPES[(type as Global).name.replace(/^torch\./, '')];
  if (!dtype) fail(`persistent id of a ${(type as Global).name}, not a storage type`);
  if (!/^[0-9A-Za-z_]{1,64}$/.test(key as string))
    fail(`storage key ${JSON.stringify(key).slice(0, 80)} is not a data entry name`);
  return { kind: 'storage', dtype, key: key as string, numel: numel as number };
}

/** An allowed callable applied to `args`. */
function call(f: Global, args: PyValue[], fail: (m: string) => never): PyValue {
  switch (f.name) {
    case 'collections.OrderedDict':
      if (args.length) fail('OrderedDict called with arguments (a state dict pickles it empty)');
      return new Map();
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state': {
      const t = args[0];
      if (!t || typeof t !== 'object' || !('kind' in t) || t.kind !== 'tensor') fail(`${f.name} of a ${kindOf(t)}`);
      return t as TensorRef;
    }
    case 'torch._utils._rebuild_tensor_v2': {
      const [storage, offset, size, stride] = args;
      const ints = (v: PyValue) => (v instanceof Tuple && v.items.every(isInt) ? (v.items as number[]) : null);
      const shape = ints(size),
        strides = ints(stride);
      if (
        !storage ||
        typeof storage !== 'object' ||
        !('kind' in storage) ||
        storage.kind !== 'storage' ||
        !isInt(offset) ||
        !shape ||
        !strides ||
        shape.length !== strides.length ||
        shape.length > 8
      )
        fail(`${f.name} with arguments other than (storage, offset, size, stride, …)`);
      return { kind: 'tensor', storage: storage as Storage, offset: offset as number, shape: shape!, stride: strides! };
    }
    default:
      return fail(`${f.name} is a storage type, not a function to call`);
  }
}
