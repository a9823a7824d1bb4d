/**
 * The families vit-wasm loads, and which one (and which naming scheme) a checkpoint is.
 * To add a family: describe it in a file beside this one and list it in FAMILIES (ARCHITECTURE.md).
 */

import { BEIT } from './beit.js';
import { CLIP } from './clip.js';
import { DEIT } from './deit.js';
import { DINOV2 } from './dinov2.js';
import type { Family, Names, SchemeSpec } from './family.js';
import { SIGLIP } from './siglip.js';
import { VIT } from './vit.js';

export type { Family, Names, Scheme, SchemeSpec } from './family.js';
export { HIDDEN_ACT, TIMM_ACT } from './family.js';

/**
 * Every family, tried in order: DeiT's timm names are the ViT's plus a distillation token, so DeiT
 * comes before the ViT; DINOv2's, CLIP's, SigLIP's and BEiT's names are their own.
 */
export const FAMILIES: readonly Family[] = [DEIT, DINOV2, CLIP, SIGLIP, BEIT, VIT];

/**
 * The family and scheme whose names these tensors are written in; an Error naming `file` when none
 * is, and what config.json (`config`) says the model is, when it says.
 */
export function detectFamily(
  tensors: ReadonlySet<string>,
  file: string,
  config: Record<string, unknown> = {},
): { family: Family; spec: SchemeSpec; names: Names } {
  for (const family of FAMILIES)
    for (const spec of family.schemes) {
      const names = spec.detect(tensors);
      if (names) return { family, spec, names };
    }
  const some = [...tensors].slice(0, 5).join(', ');
  const expected = FAMILIES.flatMap((f) => f.schemes.map((s) => s.marker));
  throw new Error(
    `vit-wasm: ${file}: not a ViT checkpoint vit-wasm recognises (expected ${expected.slice(0, -1).join(', ')} or ${expected.at(-1)}; found ${some}${tensors.size > 5 ? ', …' : ''})${saidToBe(config)}`,
  );
}

/** What config.json says the model is (HF model_type and architectures, timm architecture), for messages. */
function saidToBe(config: Record<string, unknown>): string {
  const str = (v: unknown) => (typeof v === 'string' && v.length <= 200 ? v : undefined);
  // the plain ViT's own names say nothing the message above has not
  const type = str(config.model_type) === 'vit' ? undefined : str(config.model_type);
  const archs = Array.isArray(config.architectures)
    ? config.architectures.map(str).filter((a) => a && !a.startsWith('ViT'))
    : [];
  const timm = str(config.architecture);
  const said = [
    type && `model_type "${type}"`,
    archs.length && `architectures ${archs.slice(0, 3).join(', ')}`,
    timm && `architecture "${timm}"`,
  ].filter(Boolean);
  return said.length ? `; config.json says ${said.join(', ')}: that model is not one vit-wasm loads yet` : '';
}
