/**
 * SigLIP's tokenizer, as transformers' SiglipTokenizer runs over the spiece.model a SiglipModel
 * publishes: the text prefixed with ▁ (its own ▁ turned to spaces), lowercased a character at a
 * time, split at its special tokens (`</s>`, `<unk>`: whitespace beside them dropped, as their
 * lstrip/rstrip say), each other part canonicalized as big_vision does (ASCII punctuation removed,
 * whitespace runs to one space, stripped) and encoded by SentencePiece (src/io/sentencepiece.ts)
 * with add_dummy_prefix off, behind `<unk>` whose pieces are then dropped (the tokenizer's way of
 * keeping a leading ▁); then `</s>` appended unless the text already ends with it, truncated to the
 * model's length keeping the end, and padded to that length with the pad token (`</s>`): SigLIP
 * reads every text at its last position, so every text has the model's full length.
 */
import type { ModelFiles } from '../platform/api.js';
import { type EncodedPiece, SentencePiece } from './sentencepiece.js';
import { readJson } from './source.js';
import { checkText, type TextTokenizer } from './tokenizer.js';

/** The largest spiece.model read (SigLIP's is under 1 MB). */
const MAX_SPIECE_BYTES = 64 << 20;
/** Python's string.punctuation, which canonicalize_text removes. */
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
/** Python's whitespace (str.isspace, re's \s on str): the runs canonicalize_text collapses. */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPACE_RUNS = new RegExp(`[${PY_SPACE}]+`, 'g'),
  LEADING = new RegExp(`^[${PY_SPACE}]+`),
  TRAILING = new RegExp(`[${PY_SPACE}]+$`);
const UNDERLINE = '\u2581';

/** A special token: its text, id, and whether it takes the whitespace beside it. */
interface Special {
  content: string;
  id: number;
  lstrip: boolean;
  rstrip: boolean;
}

/** SiglipTokenizer (see the module's comment). */
export class SiglipTokenizer implements TextTokenizer {
  private readonly split: RegExp;
  private readonly byContent: Map<string, Special>;
  private readonly unkLength: number;

  constructor(
    private readonly sp: SentencePiece,
    specials: Special[],
    private readonly unk: string,
    private readonly eos: number,
    private readonly pad: number,
    private readonly lowerCase: boolean,
    /** Every text's length: its tokens, `</s>`, and padding. */
    readonly maxLength: number,
    readonly file: string,
  ) {
    this.byContent = new Map(specials.map((s) => [s.content, s]));
    const alternatives = [...this.byContent.keys()]
      .sort((a, b) => b.length - a.length)
      .map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.split = new RegExp(`(${alternatives.join('|')})`, 'u');
    this.unkLength = sp.encode(unk).length;
  }

  /** The model's input for `text`: maxLength ids (`what` names the text in errors). */
  encode(text: unknown, what: string): Int32Array {
    const pieces = this.tokenize(checkText(text, what)).map((p) => p.id);
    const ids = pieces.slice(0, this.maxLength - 1);
    if (ids.length === 0 || ids[ids.length - 1] !== this.eos) ids.push(this.eos);
    const out = new Int32Array(this.maxLength).fill(this.pad);
    out.set(ids);
    return out;
  }

  /** Each id's piece (▁ where a space was). */
  tokens(ids: ArrayLike<number>): string[] {
    return Array.from(ids, (id) => this.sp.idToPiece(id));
  }

  /** PreTrainedTokenizer.tokenize as SiglipTokenizer extends it: the pieces of `text`, specials among them. */
  private tokenize(text: string): EncodedPiece[] {
    let t = UNDERLINE + text.replaceAll(UNDERLINE, ' ');
    if (this.lowerCase) t = this.lower(t);
    const parts = t.split(this.split);
    // parts alternate: text, special, text, …; a special's lstrip/rstrip eat the whitespace beside it
    for (let i = 1; i < parts.length; i += 2) {
      const s = this.byContent.get(parts[i])!;
      if (s.rstrip) parts[i + 1] = parts[i + 1].replace(LEADING, '');
      if (s.lstrip) parts[i - 1] = parts[i - 1].replace(TRAILING, '');
    }
    const out: EncodedPiece[] = [];
    parts.forEach((p, i) => {
      if (!p) return;
      if (i % 2) out.push({ id: this.byContent.get(p)!.id, piece: p });
      else for (const piece of this.pieces(p)) out.push(piece); // (not push(...): a long text has more pieces than a call takes arguments)
    });
    if (out.length > 1 && out[0].piece === UNDERLINE && this.byContent.has(out[1].piece)) out.shift();
    return out;
  }

  /** SiglipTokenizer._tokenize: canonicalized, then SentencePiece behind `<unk>`, whose pieces are dropped. */
  private pieces(part: string): EncodedPiece[] {
    const canon = part.replace(PUNCTUATION, '').replace(SPACE_RUNS, ' ').replace(LEADING, '').replace(TRAILING, '');
    const got = this.sp.encode(this.unk + canon);
    return got.length >= this.unkLength ? got.slice(this.unkLength) : got;
  }

  /**
   * Each character lowercased on its own (Python's re.sub over `(.+?)`), special tokens left as they
   * are. Before tokenize's split, as in transformers: a text's `</S>` lowercased is then `</s>`.
   */
  private lower(t: string): string {
    return t
      .split(this.split)
      .map((p, i) => (i % 2 ? p : Array.from(p, (c) => c.toLowerCase()).join('')))
      .join('');
  }
}

/**
 * SiglipTokenizer from spiece.model and tokenizer_config.json (its special tokens, do_lower_case,
 * model_max_length), its length at most `maxPositions`; null without spiece.model. An Error names
 * the file and field at fault.
 */
export async function readSiglipTokenizer(files: ModelFiles, maxPositions: number): Promise<SiglipTokenizer | null> {
  if (!(await files.exists('spiece.model'))) {
    if (await files.exists('tokenizer.json'))
      throw new Error(
        `vit-wasm: ${files.where}/tokenizer.json: a SiglipModel's tokenizer is read from its spiece.model (SiglipTokenizer's file), which is not there`,
      );
    return null;
  }
  const file = `${files.where}/spiece.model`;
  const src = await files.open('spiece.model');
  let bytes: Uint8Array;
  try {
    if (src.size > MAX_SPIECE_BYTES)
      throw new Error(`vit-wasm: ${file} is ${src.size} bytes, over the limit of ${MAX_SPIECE_BYTES}`);
    bytes = (await src.read(0, src.size)).slice();
  } finally {
    await src.close();
  }
  // transformers turns add_dummy_prefix off and puts the ▁ in front itself
  const sp = new SentencePiece(bytes, file, { addDummyPrefix: false });
  const cfgFile = `${files.where}/tokenizer_config.json`;
  const config = (await files.exists('tokenizer_config.json')) ? await readJson(files, 'tokenizer_config.json') : {};
  const name = (key: string, dflt: string): string => {
    const v = config[key] ?? dflt;
    const s = typeof v === 'object' && v !== null ? (v as { content?: unknown }).content : v;
    if (typeof s !== 'string' || !s) throw new Error(`vit-wasm: ${cfgFile}: ${key} must be a token's text`);
    return s;
  };
  const eos = name('eos_token', '</s>'),
    unk = name('unk_token', '<unk>'),
    pad = name('pad_token', '</s>');
  const extra = config.additional_special_tokens ?? [];
  if (!Array.isArray(extra)) throw new Error(`vit-wasm: ${cfgFile}: additional_special_tokens must be a list`);
  const declared = (config.added_tokens_decoder ?? {}) as Record<string, Record<string, unknown>>;
  const specials = new Map<string, Special>();
  for (const [key, d] of Object.entries(declared)) {
    const id = Number(key);
    if (typeof d?.content !== 'string' || !d.content || !Number.isSafeInteger(id) || id < 0)
      throw new Error(`vit-wasm: ${cfgFile}: added_tokens_decoder[${JSON.stringify(key)}] is not a token`);
    if (d.single_word) throw new Error(`vit-wasm: ${cfgFile}: a single_word added token is not supported`);
    if (sp.pieceToId(d.content) !== id)
      throw new Error(
        `vit-wasm: ${cfgFile}: added token ${JSON.stringify(d.content)} has id ${id}, but spiece.model gives it ${sp.pieceToId(d.content)}`,
      );
    specials.set(d.content, { content: d.content, id, lstrip: d.lstrip !== false, rstrip: d.rstrip !== false });
  }
  for (const t of [eos, unk, pad, ...extra]) {
    if (typeof t !== 'string' || !t)
      throw new Error(`vit-wasm: ${cfgFile}: additional_special_tokens holds a non-token`);
    if (!specials.has(t)) specials.set(t, { content: t, id: sp.pieceToId(t), lstrip: true, rstrip: true });
  }
  const lower = config.do_lower_case ?? true;
  if (typeof lower !== 'boolean') throw new Error(`vit-wasm: ${cfgFile}: do_lower_case must be true or false`);
  const asked = config.model_max_length;
  const maxLength =
    typeof asked === 'number' && Number.isSafeInteger(asked) && asked >= 1
      ? Math.min(asked, maxPositions)
      : maxPositions;
  return new SiglipTokenizer(
    sp,
    [...specials.values()],
    unk,
    specials.get(eos)!.id,
    specials.get(pad)!.id,
    lower,
    maxLength,
    file,
  );
}
