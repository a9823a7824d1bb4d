/**
 * Text embeddings and zero-shot classification for a model with a text tower (a CLIPModel or a
 * SiglipModel): texts tokenized, embedded in chunks by the text forward (src/nn/text.ts) on the
 * model's workers, each text's embedding cached by its string; labels ranked by the softmax over
 * exp(logit_scale) × the cosine similarity of the image's embedding and each label's prompt, as
 * CLIPModel's logits_per_image — or for SigLIP each label scored on its own, sigmoid(exp(logit_scale)
 * × cosine + logit_bias), as SiglipModel's; several templates per label averaged as CLIP's paper
 * does (each prompt's embedding normalized, their mean normalized again).
 */
import type { TextTokenizer } from '../io/tokenizer.js';
import { embedIds, endOfText, type TextActivations, type TextTower, textPlan } from '../nn/text.js';
import { softmax } from '../nn/trace.js';
import type { WasmMemory } from '../runtime/memory.js';
import { type Prediction, topPredictions } from './options.js';

/** Texts embedded per text forward: bounds the activations' memory (B · T · D floats per buffer). */
const TEXT_CHUNK = 32;
/** Text embeddings kept per model (most recently used first out when over it). */
const CACHE_TEXTS = 4096;
/** The prompt CLIP's paper and Hugging Face's examples start from. */
export const DEFAULT_TEMPLATE = 'a photo of a {}.';

/** Options for {@link ViTModel.zeroShot}. */
export interface ZeroShotOptions {
  /**
   * The prompt each label is put in, `{}` where the label goes: one template, or several whose
   * embeddings are averaged per label (CLIP's prompt ensembling). Default `'a photo of a {}.'`.
   */
  template?: string | string[];
  /** How many of the best labels to return. Default: all, best first. */
  topK?: number;
}

/** The text tower's insides for one text ({@link ViTModel.traceText}). */
export interface TextTrace {
  /** The model's input ids (T), as the tokenizer gives them (SigLIP's padded to the model's length). */
  ids: Int32Array;
  /** Each id's token as text (CLIP's byte-level tokens decoded, `</w>` dropped; SentencePiece's pieces, ▁ for a space). */
  tokens: string[];
  /** The row the text is read at: its end-of-text token (CLIP), the last (SigLIP). */
  row: number;
  /** Per layer, the attention probabilities (H, T, T): row i is what token i draws from (CLIP: only earlier tokens). */
  attention: Float32Array[];
  /** The text's embedding (P), as {@link ViTModel.embedText} gives it. */
  embedding: Float32Array;
}

/** Runs `fn` in the model's turn (ViTModel's serial queue: calls share its memory). */
type Serial = <R>(fn: () => Promise<R>) => Promise<R>;

/** What a model gives its text side. */
export interface TextSideInit {
  tower: TextTower;
  tokenizer: TextTokenizer | null;
  /** The checkpoint's directory or URL, for messages. */
  where: string;
  /** The model's memory (throws once disposed). */
  memory: () => WasmMemory;
  /** Threads a text forward runs on (each needs attention scratch). */
  workers: number;
  /** The blocks hold int8 weights (loadModel's weights: 'int8'): the plan quantizes their inputs. */
  int8: boolean;
  /** A text forward over a plan whose tokens are written: on the model's workers, or in this thread. */
  run(plan: TextActivations, rows: number[]): Promise<void>;
}

/** A model's text side: its tower, tokenizer and the embeddings computed so far. */
export class TextSide {
  private readonly cache = new Map<string, Float32Array>();

  constructor(private readonly o: TextSideInit) {}

  get tower(): TextTower {
    return this.o.tower;
  }

  /** ViTModel.embedText: (texts, P). */
  async embedText(texts: unknown, serial: Serial): Promise<Float32Array> {
    const list = Array.isArray(texts) ? texts : [texts];
    if (list.length === 0) throw new Error('vit-wasm: embedText: no texts');
    const ids = this.ids(list, 'embedText: texts');
    return serial(() => this.embed(list as string[], ids));
  }

  /** ViTModel.traceText: one text's forward with every layer's attention kept. */
  async traceText(text: unknown, serial: Serial): Promise<TextTrace> {
    const ids = this.ids([text], 'traceText: text')[0];
    return serial(async () => {
      const { embeds, probs } = await this.forward([ids], true); // one text: each layer's (H, T, T)
      return {
        ids,
        tokens: this.tok().tokens(ids),
        row: endOfText(ids, this.o.tower.endRow),
        attention: probs,
        embedding: embeds,
      };
    });
  }

  /** ViTModel.zeroShot: labels ranked for the image `image()` embeds. */
  async zeroShot(
    image: () => Promise<Float32Array>,
    labels: unknown,
    opts: ZeroShotOptions,
    serial: Serial,
  ): Promise<Prediction[]> {
    if (opts === null || typeof opts !== 'object') throw new Error('vit-wasm: zeroShot: options must be an object');
    const P = this.o.tower.shape.projectionDim,
      { texts, per } = prompts(labels, opts.template),
      names = labels as string[];
    const topK = opts.topK ?? names.length;
    if (!Number.isSafeInteger(topK) || topK < 1)
      throw new Error(`vit-wasm: zeroShot: topK must be a positive integer, got ${JSON.stringify(opts.topK)}`);
    const ids = this.ids(texts, 'zeroShot: prompts');
    const embedded = await image();
    if (embedded.length !== P)
      throw new Error(`vit-wasm: zeroShot: the image embedding has ${embedded.length} floats, the text's ${P}`);
    const img = normalizeRows(embedded, P);
    const lab = labelEmbeddings(await serial(() => this.embed(texts, ids)), names.length, per, P);
    const { logitScale, logitBias } = this.o.tower,
      scale = Math.exp(logitScale),
      logits = names.map((_, l) => {
        let s = 0;
        for (let d = 0; d < P; d++) s += img[d] * lab[l * P + d];
        return scale * s + (logitBias ?? 0);
      });
    // float32, as the softmax gives CLIP's: an engine's Math.exp may differ from another's in the last
    // bit of a double (WebKit's from V8's), which rounding to f32 hides
    const scores = logitBias === undefined ? softmax(logits) : Float32Array.from(logits, (z) => 1 / (1 + Math.exp(-z)));
    return topPredictions(scores, names, topK);
  }

  /** The tokenizer, or an Error naming the files the checkpoint lacks. */
  private tok(): TextTokenizer {
    if (!this.o.tokenizer)
      throw new Error(
        `vit-wasm: ${this.o.where} has a text tower but no tokenizer: put its ${this.o.tower.logitBias === undefined ? 'tokenizer.json (or vocab.json and merges.txt)' : 'spiece.model (and tokenizer_config.json)'} beside config.json`,
      );
    return this.o.tokenizer;
  }

  /** Token ids of each text, checked (`what` names the list in errors). */
  private ids(texts: readonly unknown[], what: string): Int32Array[] {
    const tok = this.tok();
    return texts.map((t, i) => tok.encode(t, `${what}[${i}]`));
  }

  /**
   * Embeddings (N, P) of `texts`, from the cache where computed before; the others through the
   * text forward, in chunks, their plans in the model's memory above its end (given back).
   */
  private async embed(texts: readonly string[], ids: readonly Int32Array[]): Promise<Float32Array> {
    const P = this.o.tower.shape.projectionDim,
      out = new Float32Array(texts.length * P),
      todo: number[] = [];
    texts.forEach((t, i) => {
      const hit = this.cache.get(t);
      if (hit) out.set(hit, i * P);
      else todo.push(i);
    });
    for (let c = 0; c < todo.length; c += TEXT_CHUNK) {
      const chunk = todo.slice(c, c + TEXT_CHUNK);
      const got = (await this.forward(chunk.map((i) => ids[i]))).embeds;
      chunk.forEach((i, j) => {
        const e = got.slice(j * P, (j + 1) * P);
        out.set(e, i * P);
        this.remember(texts[i], e);
      });
    }
    return out;
  }

  private remember(text: string, e: Float32Array): void {
    if (this.cache.size >= CACHE_TEXTS) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(text, e);
  }

  /**
   * One text forward over `ids` (B texts), padded with their last token to the longest: (B, P),
   * and with `keep` each layer's attention (B, H, T, T).
   */
  private async forward(
    ids: readonly Int32Array[],
    keep = false,
  ): Promise<{ embeds: Float32Array; probs: Float32Array[] }> {
    const c = this.o.tower.shape,
      mem = this.o.memory(),
      B = ids.length,
      T = Math.max(...ids.map((x) => x.length)),
      D = c.hiddenSize,
      end = mem.end;
    try {
      const a = textPlan((n) => mem.alloc(n), mem.f32.bind(mem), c, B, T, this.o.workers, this.o.int8, keep);
      const padded = new Int32Array(B * T);
      ids.forEach((x, b) => {
        padded.fill(x[x.length - 1], b * T, (b + 1) * T); // after its end: the end token (CLIP masks it; SigLIP's texts are all T long)
        padded.set(x, b * T);
      });
      embedIds(padded, this.o.tower.tokens, this.o.tower.positions, T, D, mem.f32(a.tokens, B * T * D));
      await this.o.run(
        a,
        ids.map((x) => endOfText(x, this.o.tower.endRow)),
      );
      return {
        embeds: mem.f32(a.projected, B * c.projectionDim).slice(),
        probs: (a.probs ?? []).map((p) => mem.f32(p, B * c.numHeads * T * T).slice()),
      };
    } finally {
      mem.reset(end);
    }
  }
}

/**
 * Each row of `x` (rows of `dim`) divided by its L2 norm, in float64 rounded once. A row whose norm
 * is 0 or not finite has no direction: an Error naming it (never NaN cosines).
 */
export function normalizeRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += x[r * dim + d] ** 2;
    const n = Math.sqrt(s);
    if (!(n > 0 && Number.isFinite(n)))
      throw new Error(`vit-wasm: embedding row ${r} has norm ${n}: it has no direction to compare by cosine`);
    for (let d = 0; d < dim; d++) out[r * dim + d] = x[r * dim + d] / n;
  }
  return out;
}

/**
 * Cosine similarities (Na, Nb) of the rows of `a` and `b` (rows of `dim` floats), e.g. image
 * embeddings and text embeddings in the space they share, computed in float64.
 */
export function similarity(a: Float32Array, b: Float32Array, dim: number): Float64Array {
  if (!(a instanceof Float32Array) || !(b instanceof Float32Array) || !Number.isSafeInteger(dim) || dim <= 0)
    throw new Error('vit-wasm: similarity(a, b, dim): two Float32Arrays of rows and the row size');
  if (a.length % dim || b.length % dim)
    throw new Error(`vit-wasm: similarity: ${a.length} and ${b.length} floats are not rows of ${dim}`);
  const na = normalizeRows(a, dim),
    nb = normalizeRows(b, dim),
    A = a.length / dim,
    Bn = b.length / dim,
    out = new Float64Array(A * Bn);
  for (let i = 0; i < A; i++)
    for (let j = 0; j < Bn; j++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += na[i * dim + d] * nb[j * dim + d];
      out[i * Bn + j] = s;
    }
  return out;
}

/** The prompts of `labels` under `templates` (label-major), each template checked for its `{}`. */
export function prompts(labels: unknown, template: ZeroShotOptions['template']): { texts: string[]; per: number } {
  if (!Array.isArray(labels) || labels.length === 0)
    throw new Error('vit-wasm: zeroShot: labels must be a non-empty array of strings');
  labels.forEach((l, i) => {
    if (typeof l !== 'string') throw new Error(`vit-wasm: zeroShot: labels[${i}] must be a string, got ${typeof l}`);
  });
  const templates = template === undefined ? [DEFAULT_TEMPLATE] : Array.isArray(template) ? template : [template];
  if (templates.length === 0) throw new Error('vit-wasm: zeroShot: template must be a string or a non-empty array');
  templates.forEach((t, i) => {
    if (typeof t !== 'string' || !t.includes('{}'))
      throw new Error(
        `vit-wasm: zeroShot: template${Array.isArray(template) ? `[${i}]` : ''} must be a string with {} where the label goes, got ${JSON.stringify(t)}`,
      );
  });
  return { texts: labels.flatMap((l: string) => templates.map((t) => t.replaceAll('{}', l))), per: templates.length };
}

/**
 * Each label's embedding (L, P) from its prompts' (L · per, P): the normalized mean of the
 * normalized prompt embeddings (one template: the normalized embedding).
 */
export function labelEmbeddings(e: Float32Array, L: number, per: number, P: number): Float32Array {
  const n = normalizeRows(e, P),
    mean = new Float32Array(L * P);
  for (let l = 0; l < L; l++)
    for (let d = 0; d < P; d++) {
      let s = 0;
      for (let t = 0; t < per; t++) s += n[(l * per + t) * P + d];
      mean[l * P + d] = s / per;
    }
  return normalizeRows(mean, P);
}
