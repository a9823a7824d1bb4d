/**
 * The families vit-wasm loads, and which one (and which naming scheme) a checkpoint is.
 * To add a family: describe it in a file beside this one and list it in FAMILIES (ARCHITECTURE.md).
 */
import type { Family, Names, SchemeSpec } from './family.js';
import { VIT } from './vit.js';

export type { Family, Names, Scheme, SchemeSpec } from './family.js';

/** Every family, tried in order. */
export const FAMILIES: readonly Family[] = [VIT];

/** The family and scheme whose names these tensors are written in; an Error naming `file` when none is. */
export function detectFamily(
  tensors: ReadonlySet<string>,
  file: string,
): { family: Family; spec: SchemeSpec; names: Names } {
  for (const family of FAMILIES)
    for (const spec of family.schemes) {
      const names = spec.detect(tensors);
      if (names) return { family, spec, names };
    }
  const some = [...tensors].slice(0, 5).join(', ');
  const expected = FAMILIES.flatMap((f) => f.schemes.map((s) => s.marker));
  throw new Error(
    `vit-wasm: ${file}: not a ViT checkpoint vit-wasm recognises (expected ${expected.slice(0, -1).join(', ')} or ${expected.at(-1)}; found ${some}${tensors.size > 5 ? ', …' : ''})`,
  );
}
