/**
 * CLIP's tokenizer, from the files a checkpoint publishes: tokenizer.json (CLIPTokenizerFast's),
 * or vocab.json + merges.txt (CLIPTokenizer's), which are turned into the tokenizer.json
 * transformers' CLIPConverter writes for them (NFC, whitespace runs to one space, lowercase; CLIP's
 * split; byte-level BPE with `</w>` ending a word). Either runs on @huggingface/tokenizers, the
 * JavaScript port of Hugging Face's tokenizers. A text becomes <|startoftext|>, its tokens,
 * <|endoftext|>, truncated (the end-of-text token kept) to what the model's positions hold.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import type { ModelFiles } from '../platform/api.js';
import { readJson } from './source.js';

const BOS = '<|startoftext|>',
  EOS = '<|endoftext|>';
/** The longest text (UTF-16 code units) a tokenizer takes; longer ones are refused, not cut silently. */
export const MAX_TEXT_CHARS = 1_000_000;

/** CLIP's pre-tokenizer split (convert_slow_tokenizer's CLIPConverter). */
const CLIP_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/** Texts to token ids for one text tower. */
export interface TextTokenizer {
  /** Tokens a text may have, its special tokens included. */
  readonly maxLength: number;
  /** Where the files came from, for messages. */
  readonly file: string;
  /** The model's input ids for `text` (`what` names the text in errors: "labels[2]"). */
  encode(text: unknown, what: string): Int32Array;
  /** Each id's token as text, for showing (a trace's tokens). */
  tokens(ids: ArrayLike<number>): string[];
}

/**
 * `text` if it is text a tokenizer takes; else an Error naming `what`: a non-string, text over
 * MAX_TEXT_CHARS, unpaired surrogates (not text: the reference tokenizers cannot take them either).
 */
export function checkText(text: unknown, what: string): string {
  if (typeof text !== 'string') throw new Error(`vit-wasm: ${what} must be a string, got ${describe(text)}`);
  if (text.length > MAX_TEXT_CHARS)
    throw new Error(`vit-wasm: ${what} is ${text.length} characters long, over the limit of ${MAX_TEXT_CHARS}`);
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(text);
  if (lone)
    throw new Error(
      `vit-wasm: ${what} is not valid text: an unpaired surrogate (U+${lone[0].charCodeAt(0).toString(16).toUpperCase()}) at index ${lone.index}`,
    );
  return text;
}

/** CLIP's byte-level BPE tokenizer. */
export class BpeTokenizer implements TextTokenizer {
  private readonly byId: string[] = [];

  constructor(
    private readonly tok: Tokenizer,
    vocab: Record<string, number>,
    private readonly bos: number,
    private readonly eos: number,
    readonly maxLength: number,
    readonly file: string,
  ) {
    for (const [t, id] of Object.entries(vocab)) this.byId[id] = t;
  }

  /** Each token's text: its byte-level symbols turned back into bytes and decoded, `</w>` dropped. */
  tokens(ids: ArrayLike<number>): string[] {
    const unicodeToByte = byteLevelTable();
    return Array.from(ids, (id) => {
      const t = (this.byId[id] ?? '').replace(/<\/w>$/, '');
      if (t.startsWith('<|')) return t; // a special token
      const bytes = Uint8Array.from(t, (ch) => unicodeToByte.get(ch) ?? 63);
      return fromUtf8.decode(bytes);
    });
  }

  /** The ids of `text` (bos, its tokens, eos), truncated to maxLength with eos kept. */
  encode(text: unknown, what: string): Int32Array {
    const ids = this.tok.encode(checkText(text, what), { add_special_tokens: false }).ids;
    const n = Math.min(ids.length, this.maxLength - 2),
      out = new Int32Array(n + 2);
    out[0] = this.bos;
    for (let i = 0; i < n; i++) out[i + 1] = ids[i];
    out[n + 1] = this.eos;
    return out;
  }
}

const fromUtf8 = new TextDecoder();
let byteLevel: Map<string, number> | null = null;
/** GPT-2's and CLIP's map of the 256 bytes to printable characters, inverted (character → byte). */
function byteLevelTable(): Map<string, number> {
  if (byteLevel) return byteLevel;
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  byteLevel = new Map();
  let n = 0;
  for (let b = 0; b < 256; b++) byteLevel.set(String.fromCharCode(printable(b) ? b : 256 + n++), b);
  return byteLevel;
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/**
 * The tokenizer beside a checkpoint: tokenizer.json, else vocab.json + merges.txt; null when it has
 * neither. `maxPositions` caps the length (tokenizer_config.json's model_max_length may lower it).
 */
export async function readTokenizer(files: ModelFiles, maxPositions: number): Promise<TextTokenizer | null> {
  let json: Record<string, unknown>, file: string;
  if (await files.exists('tokenizer.json')) {
    file = `${files.where}/tokenizer.json`;
    json = await readJson(files, 'tokenizer.json');
  } else if ((await files.exists('vocab.json')) && (await files.exists('merges.txt'))) {
    file = `${files.where}/vocab.json and merges.txt`;
    json = clipTokenizerJson(await readJson(files, 'vocab.json'), await files.text('merges.txt'), file);
  } else return null;
  const config = (await files.exists('tokenizer_config.json')) ? await readJson(files, 'tokenizer_config.json') : {};
  const model = json.model as { type?: string; vocab?: Record<string, number> } | undefined;
  if (model?.type !== 'BPE' || typeof model.vocab !== 'object')
    throw new Error(
      `vit-wasm: ${file}: a ${model?.type ?? 'missing'} tokenizer model; a CLIPModel's tokenizer is CLIP's byte-level BPE`,
    );
  const bos = model.vocab[BOS],
    eos = model.vocab[EOS];
  if (!Number.isInteger(bos) || !Number.isInteger(eos))
    throw new Error(`vit-wasm: ${file}: the vocabulary has no ${BOS} or ${EOS} (CLIP's start and end tokens)`);
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new Error(`vit-wasm: ${file}: not a tokenizer @huggingface/tokenizers can read (${(e as Error).message})`);
  }
  const asked = config.model_max_length;
  const maxLength =
    typeof asked === 'number' && Number.isSafeInteger(asked) && asked >= 2
      ? Math.min(asked, maxPositions)
      : maxPositions;
  return new BpeTokenizer(tok, model.vocab, bos, eos, maxLength, file);
}

/** The tokenizer.json CLIPConverter writes for CLIPTokenizer's vocab.json and merges.txt. */
function clipTokenizerJson(vocab: Record<string, unknown>, mergesText: string, file: string): Record<string, unknown> {
  const merges = mergesText
    .split('\n')
    .filter((line, i) => line.trim() !== '' && !(i === 0 && line.startsWith('#version')));
  for (const [i, m] of merges.entries())
    if (m.split(' ').length !== 2) throw new Error(`vit-wasm: ${file}: merges.txt line ${i + 2} is not two symbols`);
  const special = (t: string) => ({
    id: vocab[t],
    content: t,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  return {
    version: '1.0',
    added_tokens: [special(BOS), special(EOS)].filter((t) => Number.isInteger(t.id)),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [EOS, vocab[EOS]],
      cls: [BOS, vocab[BOS]],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: EOS,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}
