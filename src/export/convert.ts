/**
 * `vit-wasm convert`: a model directory's weights rewritten as safetensors, tensor for tensor —
 * the same names, shapes, dtypes and bytes — so a checkpoint published only as PyTorch files
 * (pytorch_model.bin, its shards, open_clip_pytorch_model.bin) becomes one the Hugging Face
 * tooling and vit-wasm read without a pickle. The configs beside it are copied as they are.
 */
import { OPEN_CLIP_CONFIG, OPEN_CLIP_PYTORCH_WEIGHTS, OPEN_CLIP_WEIGHTS } from '../io/open-clip.js';
import { encodeSafetensors, type TensorOut } from '../io/safetensors.js';
import type { ModelFiles } from '../io/source.js';
import { openTensors } from '../io/tensors.js';

/** The configs a model directory may hold beside its weights, copied by {@link convertModel}. */
const CONFIGS = ['config.json', 'preprocessor_config.json', OPEN_CLIP_CONFIG];

/**
 * The files of `files` with its weights as one safetensors file: model.safetensors, or
 * open_clip_model.safetensors for open_clip's .bin; `from` the weights file read. Integer and bool
 * tensors (buffers a PyTorch file may carry, such as position_ids) are not weights: left out.
 */
export async function convertModel(
  files: ModelFiles,
): Promise<{ files: Record<string, Uint8Array | string>; from: string; tensors: number }> {
  const { tensors, sources, file } = await openTensors(files);
  const out: TensorOut[] = [];
  try {
    for (const t of tensors.values()) {
      const bytes = (await t.source.read(t.begin, t.end - t.begin)).slice();
      out.push({ name: t.name, shape: t.shape, dtype: t.dtype, bytes });
    }
  } finally {
    await Promise.all(sources.map((s) => s.close()));
  }
  const name = file.endsWith(OPEN_CLIP_PYTORCH_WEIGHTS) ? OPEN_CLIP_WEIGHTS : 'model.safetensors';
  const result: Record<string, Uint8Array | string> = {
    [name]: encodeSafetensors(out, { format: 'pt', converted_by: 'vit-wasm convert' }),
  };
  for (const c of CONFIGS) if (await files.exists(c)) result[c] = await files.text(c);
  return { files: result, from: file, tensors: out.length };
}
