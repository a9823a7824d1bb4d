/**
 * SentencePiece's unigram tokenizer (Kudo and Richardson), read from the `.model` file a checkpoint
 * publishes (SigLIP's spiece.model) and run as Google's sentencepiece library runs it: its
 * normalizer (the precompiled character map, a double-array trie over UTF-8, then its whitespace
 * rules) and the unigram model's Viterbi search (the library's optimized encoder, each sum in the
 * precision the library computes it in, since ties decide between equal segmentations), consecutive unknown pieces merged into one, or split into byte pieces
 * where the model falls back to bytes. No npm library reads this format exactly (the JavaScript
 * tokenizers approximate the character map with NFKC), so it is implemented here, with the
 * library itself (Debian's python3-sentencepiece) as the oracle in tests/fixtures/siglip_text.py.
 * The protobuf wire format is read by `pbf`.
 */
import { PbfReader } from 'pbf';

/** ModelProto.SentencePiece.Type. */
const NORMAL = 1,
  UNKNOWN = 2,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6;
/** ModelProto.TrainerSpec.ModelType.UNIGRAM: the only model type read here. */
const UNIGRAM = 1;
/** The library's penalty below the lowest piece score for a character no piece covers. */
const UNK_PENALTY = 10;
/** U+2581 LOWER ONE EIGHTH BLOCK, the library's visible space, in UTF-8. */
const SPACE_SYMBOL = [0xe2, 0x96, 0x81];

interface Piece {
  piece: string;
  score: number;
  type: number;
}

interface NormalizerSpec {
  name: string;
  charsmap: Uint8Array | null;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

interface ModelProto {
  pieces: Piece[];
  modelType: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  normalizer: NormalizerSpec;
}

/** The fields of sentencepiece_model.proto this tokenizer depends on (absent fields: the proto's defaults). */
function readProto(bytes: Uint8Array): ModelProto {
  const pbf = new PbfReader(bytes);
  const m: ModelProto = {
    pieces: [],
    modelType: UNIGRAM,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    normalizer: {
      name: '',
      charsmap: null,
      addDummyPrefix: true,
      removeExtraWhitespaces: true,
      escapeWhitespaces: true,
    },
  };
  pbf.readFields((tag, r, p) => {
    if (tag === 1)
      r.pieces.push(
        p.readMessage(
          (t, s, q) => {
            if (t === 1) s.piece = q.readString();
            else if (t === 2) s.score = q.readFloat();
            else if (t === 3) s.type = q.readVarint();
          },
          { piece: '', score: 0, type: NORMAL },
        ),
      );
    else if (tag === 2)
      // a repeated embedded message merges into the one before it, as protobuf parses it
      p.readMessage((t, s, q) => {
        if (t === 3) s.modelType = q.readVarint();
        else if (t === 35) s.byteFallback = q.readBoolean();
        else if (t === 24) s.treatWhitespaceAsSuffix = q.readBoolean();
      }, r);
    else if (tag === 3)
      p.readMessage((t, s, q) => {
        if (t === 1) s.name = q.readString();
        else if (t === 2) s.charsmap = q.readBytes().slice();
        else if (t === 3) s.addDummyPrefix = q.readBoolean();
        else if (t === 4) s.removeExtraWhitespaces = q.readBoolean();
        else if (t === 5) s.escapeWhitespaces = q.readBoolean();
      }, r.normalizer);
  }, m);
  if (pbf.pos !== bytes.length) throw new Error('its protobuf messages run past the end of the file');
  return m;
}

/**
 * The precompiled character map (NormalizerSpec.precompiled_charsmap): `<trie size, u32 LE><a
 * Darts double-array trie over UTF-8 bytes><NUL-terminated replacements>`; the trie's value at a
 * key is the offset of its replacement.
 */
class CharsMap {
  private readonly units: Uint32Array;
  private readonly replacements: Uint8Array;

  constructor(blob: Uint8Array) {
    const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const size = blob.length >= 4 ? dv.getUint32(0, true) : Number.NaN;
    if (!(size < blob.length - 4) || size % 4)
      throw new Error(`its precompiled_charsmap is broken (a trie of ${size} bytes in ${blob.length})`);
    this.units = new Uint32Array(size / 4);
    for (let i = 0; i < this.units.length; i++) this.units[i] = dv.getUint32(4 + 4 * i, true);
    this.replacements = blob.subarray(4 + size);
  }

  /** The longest key at `s[i…]`: [its length, its replacement], or null (Darts' commonPrefixSearch). */
  longest(s: Uint8Array, i: number): [number, Uint8Array] | null {
    const u = this.units;
    let pos = offset(u[0]),
      len = 0,
      value = 0;
    for (let k = i; k < s.length; k++) {
      pos ^= s[k];
      if (pos >= u.length) break;
      const unit = u[pos];
      if ((unit & 0x800000ff) >>> 0 !== s[k]) break; // the unit's label is not this byte
      pos ^= offset(unit);
      if ((unit >>> 8) & 1 && pos < u.length) {
        len = k + 1 - i;
        value = u[pos] & 0x7fffffff;
      }
    }
    if (!len) return null;
    let end = value;
    while (end < this.replacements.length && this.replacements[end] !== 0) end++;
    return [len, this.replacements.subarray(value, end)];
  }
}

/** A Darts unit's offset to its children. */
function offset(unit: number): number {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}

/** The bytes of one UTF-8 character from its lead byte (the library's OneCharLen). */
function charLength(lead: number): number {
  return lead < 0xc0 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

/** A byte trie over the model's pieces: one map from (node · 256 + byte) to the child node. */
class PieceTrie {
  private readonly next = new Map<number, number>();
  /** The piece id at each node, −1 where none ends there. */
  private ids: number[] = [-1];

  add(bytes: Uint8Array, id: number): void {
    let node = 0;
    for (const b of bytes) {
      const key = node * 256 + b;
      let child = this.next.get(key);
      if (child === undefined) {
        child = this.ids.length;
        this.ids.push(-1);
        this.next.set(key, child);
      }
      node = child;
    }
    if (this.ids[node] < 0) this.ids[node] = id; // a piece defined twice keeps its first id
  }

  /** Calls `found(length, id)` for each piece that is a prefix of `s[i…]`, shortest first. */
  prefixes(s: Uint8Array, i: number, found: (length: number, id: number) => void): void {
    let node = 0;
    for (let k = i; k < s.length; k++) {
      const child = this.next.get(node * 256 + s[k]);
      if (child === undefined) return;
      node = child;
      if (this.ids[node] >= 0) found(k + 1 - i, this.ids[node]);
    }
  }

  /** The longest piece at `s[i…]`: its length, or 0. */
  longest(s: Uint8Array, i: number): number {
    let len = 0;
    this.prefixes(s, i, (n) => (len = n));
    return len;
  }
}

const utf8 = new TextEncoder(),
  fromUtf8 = new TextDecoder();

/** One piece of an encoding: its id and its text (the normalized text it covers, for unknown pieces). */
export interface EncodedPiece {
  id: number;
  piece: string;
}

/** A SentencePiece unigram model: normalize, then the best segmentation into pieces. */
export class SentencePiece {
  private readonly pieces: Piece[];
  private readonly byId = new Map<string, number>();
  private readonly trie = new PieceTrie();
  private readonly userDefined = new PieceTrie();
  private readonly hasUserDefined: boolean;
  private readonly charsmap: CharsMap | null;
  private readonly norm: NormalizerSpec;
  private readonly byteFallback: boolean;
  private readonly unkId: number;
  private readonly minScore: number;
  private readonly maxScore: number;

  /**
   * The model in `bytes` (a `.model` file; `file` names it in errors). `addDummyPrefix` overrides
   * the file's normalizer_spec.add_dummy_prefix, as transformers' SiglipTokenizer does.
   */
  constructor(bytes: Uint8Array, file: string, opts: { addDummyPrefix?: boolean } = {}) {
    let m: ModelProto;
    try {
      m = readProto(bytes);
    } catch (e) {
      throw new Error(`vit-wasm: ${file} is not a SentencePiece model: ${(e as Error).message}`);
    }
    const refuse = (what: string) => {
      throw new Error(`vit-wasm: ${file}: ${what}`);
    };
    if (m.modelType !== UNIGRAM)
      refuse(`a SentencePiece model of type ${m.modelType}; vit-wasm reads unigram models (type 1) only`);
    if (m.treatWhitespaceAsSuffix)
      refuse('trainer_spec.treat_whitespace_as_suffix is set, which vit-wasm does not compute');
    if (m.pieces.length === 0) refuse('a SentencePiece model with no pieces');
    this.pieces = m.pieces;
    this.norm = { ...m.normalizer, addDummyPrefix: opts.addDummyPrefix ?? m.normalizer.addDummyPrefix };
    this.byteFallback = m.byteFallback;
    let unk = -1,
      min = 3.4028234663852886e38,
      max = 1.1754943508222875e-38; // the library starts from FLT_MAX and FLT_MIN
    m.pieces.forEach((p, id) => {
      if (!p.piece) refuse(`piece ${id} is empty`);
      if (this.byId.has(p.piece)) refuse(`the piece ${JSON.stringify(p.piece)} is defined twice`);
      this.byId.set(p.piece, id);
      if (p.type === UNKNOWN) {
        if (unk >= 0) refuse('more than one unknown piece');
        unk = id;
      }
      if (p.type === NORMAL || p.type === USER_DEFINED || p.type === UNUSED) this.trie.add(utf8.encode(p.piece), id);
      if (p.type === USER_DEFINED) this.userDefined.add(utf8.encode(p.piece), id);
      if (p.type === NORMAL) {
        min = Math.min(min, p.score);
        max = Math.max(max, p.score);
      }
    });
    if (unk < 0) refuse('no unknown piece (<unk>)');
    if (this.byteFallback)
      for (let b = 0; b < 256; b++)
        if (this.pieces[this.byId.get(bytePiece(b)) ?? -1]?.type !== BYTE)
          refuse(`trainer_spec.byte_fallback is set but the byte piece ${bytePiece(b)} is missing`);
    this.unkId = unk;
    this.minScore = min;
    this.maxScore = max;
    this.hasUserDefined = m.pieces.some((p) => p.type === USER_DEFINED);
    try {
      this.charsmap = m.normalizer.charsmap?.length ? new CharsMap(m.normalizer.charsmap) : null;
    } catch (e) {
      throw new Error(`vit-wasm: ${file}: ${(e as Error).message}`);
    }
  }

  /** The piece of `id` ('' when out of range). */
  idToPiece(id: number): string {
    return this.pieces[id]?.piece ?? '';
  }

  /** The id of `piece`, or the unknown piece's id (the library's PieceToId). */
  pieceToId(piece: string): number {
    return this.byId.get(piece) ?? this.unkId;
  }

  /** The normalized UTF-8 of `text` (the library's Normalizer::Normalize). */
  normalize(text: string): Uint8Array {
    const s = utf8.encode(text),
      n = this.norm,
      out: number[] = [];
    let i = 0;
    if (n.removeExtraWhitespaces)
      while (i < s.length) {
        const [consumed, sp] = this.prefix(s, i);
        if (sp.length !== 1 || sp[0] !== 0x20) break; // leading text that normalizes to one space
        i += consumed;
      }
    if (i === s.length) return new Uint8Array(0);
    const space = n.escapeWhitespaces ? SPACE_SYMBOL : [0x20];
    if (n.addDummyPrefix) out.push(...space);
    let prevSpace = n.removeExtraWhitespaces;
    while (i < s.length) {
      const [consumed, sp] = this.prefix(s, i);
      let k = 0;
      while (prevSpace && k < sp.length && sp[k] === 0x20) k++; // spaces after a space are dropped
      if (k < sp.length) {
        for (; k < sp.length; k++) {
          if (sp[k] === 0x20) out.push(...space);
          else out.push(sp[k]);
        }
        prevSpace = sp[sp.length - 1] === 0x20;
      }
      i += consumed;
      if (!n.removeExtraWhitespaces) prevSpace = false;
    }
    if (n.removeExtraWhitespaces)
      while (out.length >= space.length && space.every((b, j) => out[out.length - space.length + j] === b))
        out.length -= space.length;
    return Uint8Array.from(out);
  }

  /** What the normalizer makes of the text at `s[i…]`: [bytes consumed, bytes out]. */
  private prefix(s: Uint8Array, i: number): [number, Uint8Array] {
    if (this.hasUserDefined) {
      const len = this.userDefined.longest(s, i);
      if (len) return [len, s.subarray(i, i + len)]; // user-defined pieces are never normalized
    }
    const hit = this.charsmap?.longest(s, i);
    if (hit) return hit;
    const len = Math.min(charLength(s[i]), s.length - i);
    return [len, s.subarray(i, i + len)];
  }

  /**
   * The pieces of `text`: normalized, segmented by the unigram model's Viterbi search (the
   * library's EncodeOptimized), then runs of unknown pieces merged (or, with byte fallback, each
   * unknown piece as its bytes' pieces), as SentencePieceProcessor::Encode returns them.
   */
  encode(text: string): EncodedPiece[] {
    const s = this.normalize(text),
      n = s.length;
    if (n === 0) return [];
    const score = new Float32Array(n + 1),
      start = new Int32Array(n + 1).fill(-1),
      id = new Int32Array(n + 1).fill(-1);
    const unkScore = Math.fround(this.minScore - UNK_PENALTY);
    for (let at = 0; at < n; ) {
      const here = score[at],
        mblen = Math.min(charLength(s[at]), n - at);
      let single = false;
      this.trie.prefixes(s, at, (len, pid) => {
        const p = this.pieces[pid];
        if (p.type === UNUSED) return;
        const end = at + len;
        // the library's score is a double (its user-defined bonus, length · max score − 0.1, is one, and
        // so the conditional's type), so the sum it compares is unrounded; only the stored best is a float
        const cand = (p.type === USER_DEFINED ? Math.fround(len * this.maxScore) - 0.1 : p.score) + here;
        if (start[end] === -1 || cand > score[end]) {
          score[end] = cand;
          start[end] = at;
          id[end] = pid;
        }
        if (len === mblen) single = true;
      });
      if (!single) {
        const end = at + mblen,
          cand = Math.fround(unkScore + here); // float + float: a float sum
        if (start[end] === -1 || cand > score[end]) {
          score[end] = cand;
          start[end] = at;
          id[end] = this.unkId;
        }
      }
      at += mblen;
    }
    const path: [number, number, number][] = [];
    for (let end = n; end > 0; end = start[end]) path.push([start[end], end, id[end]]);
    path.reverse();
    const out: EncodedPiece[] = [];
    let prevUnk = false;
    for (const [a, b, pid] of path) {
      const unk = pid === this.unkId;
      if (!unk) out.push({ id: pid, piece: this.pieces[pid].piece });
      else if (this.byteFallback)
        for (let k = a; k < b; k++) out.push({ id: this.byId.get(bytePiece(s[k]))!, piece: bytePiece(s[k]) });
      // an unknown piece's text is the normalized text it covers
      else if (prevUnk) out[out.length - 1].piece += fromUtf8.decode(s.subarray(a, b));
      else out.push({ id: this.unkId, piece: fromUtf8.decode(s.subarray(a, b)) });
      prevUnk = unk;
    }
    return out;
  }
}

/** The byte piece of byte `b`: `<0xAB>`. */
function bytePiece(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}
