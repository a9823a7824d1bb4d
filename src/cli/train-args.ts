/** The flags of `vit-wasm train --data`, parsed and checked: each bad value is a usage error naming its flag. */
import { parseArgs } from 'node:util';
import { PRESETS } from '../io/presets.js';
import { MAX_WORKERS } from '../runtime/pool.js';
import { AUGMENT_MODES, type AugmentMode } from '../train/augment.js';

type UsageErrorCtor = new (m: string) => Error;

/** A flag's positive number (an integer with `int`), `dflt` when absent; otherwise a usage error naming the flag. */
export function positiveFlag(
  v: string | undefined,
  flag: string,
  dflt: number,
  Usage: UsageErrorCtor,
  int = false,
): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (int && !Number.isInteger(n)))
    throw new Usage(`${flag} must be a positive ${int ? 'integer' : 'number'}, got '${v}'`);
  return n;
}

/** What `vit-wasm train --data` was asked for. */
export interface DataArgs {
  data: string;
  out: string;
  val?: string;
  valSplit: number;
  from?: string;
  preset?: string;
  imageSize?: number;
  patch?: number;
  channels?: 1 | 3;
  hidden?: number;
  layers?: number;
  heads?: number;
  mlp?: number;
  epochs: number;
  batch: number;
  /** Micro-batches of `batch` whose gradients make one step (gradient accumulation). */
  accumulate: number;
  lr: number;
  weightDecay: number;
  warmup: number;
  clip: number;
  augment: AugmentMode;
  threads: number;
  seed: number;
  resume: boolean;
  /** Activation recomputation (TrainOptions.recompute). */
  recompute: boolean;
  patience: number;
  skipBad: boolean;
  cacheMb: number;
  freeze: 'none' | 'all' | number;
  labelSmoothing: number;
  layerDecay: number;
}

const STRING_FLAGS = [
  'data',
  'out',
  'val',
  'val-split',
  'from',
  'preset',
  'image-size',
  'patch',
  'channels',
  'hidden',
  'layers',
  'heads',
  'mlp',
  'epochs',
  'batch',
  'accumulate',
  'lr',
  'weight-decay',
  'warmup',
  'clip',
  'augment',
  'threads',
  'seed',
  'patience',
  'cache-mb',
  'freeze',
  'label-smoothing',
  'layer-decay',
] as const;

/** Parses `train --data …`; `defaultThreads` is the cores (at most a pool's workers). */
export function dataArgs(argv: string[], Usage: UsageErrorCtor, defaultThreads: number): DataArgs {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(STRING_FLAGS.map((f) => [f, { type: 'string' as const }])),
      resume: { type: 'boolean' },
      recompute: { type: 'boolean' },
      'skip-bad': { type: 'boolean' },
    },
  }) as { values: Record<string, string | boolean | undefined> };
  const str = (k: string) => v[k] as string | undefined;
  const num = (k: string, dflt: number, { int = false, min = 0, minOpen = true, max = Infinity } = {}) => {
    const s = str(k);
    if (s === undefined) return dflt;
    const n = Number(s);
    if (!Number.isFinite(n) || (minOpen ? n <= min : n < min) || n > max || (int && !Number.isInteger(n)))
      throw new Usage(
        `--${k} must be ${int ? 'an integer' : 'a number'} ${minOpen ? '>' : '≥'} ${min}${max < Infinity ? ` and ≤ ${max}` : ''}, got '${s}'`,
      );
    return n;
  };
  const opt = (k: string, o: { int?: boolean; max?: number } = { int: true }) =>
    str(k) === undefined ? undefined : num(k, 0, o);
  if (!str('data')) throw new Usage('train needs --data DIR|manifest.csv|manifest.jsonl (or --dataset mnist)');
  if (!str('out')) throw new Usage('train needs --out DIR');
  // a linear probe computes each image's features once: no augmentation unless asked (then the trainer runs)
  const augment = (str('augment') ?? (str('freeze') === 'all' ? 'none' : 'light')) as AugmentMode;
  if (!AUGMENT_MODES.includes(augment))
    throw new Usage(`--augment must be ${AUGMENT_MODES.join(', ')}, got '${str('augment')}'`);
  const preset = str('preset');
  if (preset !== undefined && !(preset in PRESETS))
    throw new Usage(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got '${preset}'`);
  const channels = opt('channels');
  if (channels !== undefined && channels !== 1 && channels !== 3)
    throw new Usage(`--channels must be 1 or 3, got '${channels}'`);
  if (
    str('from') &&
    ['preset', 'image-size', 'patch', 'channels', 'hidden', 'layers', 'heads', 'mlp'].some((k) => str(k))
  )
    throw new Usage(
      '--from takes the shape of its checkpoint: --preset and the dimension flags are for training from scratch',
    );
  if (str('val') && str('val-split')) throw new Usage('give --val DIR or --val-split F, not both');
  const fz = str('freeze') ?? 'none';
  if (fz !== 'none' && fz !== 'all' && !/^\d+$/.test(fz))
    throw new Usage(`--freeze must be all (a linear probe), none, or the number of last blocks to train, got '${fz}'`);
  if (fz !== 'none' && !str('from')) throw new Usage('--freeze is for fine-tuning: give --from MODEL');
  if (str('layer-decay') && !str('from')) throw new Usage('--layer-decay is for fine-tuning: give --from MODEL');
  const seed = str('seed') === undefined ? 0 : Number(str('seed'));
  if (!Number.isSafeInteger(seed)) throw new Usage(`--seed must be an integer, got '${str('seed')}'`);
  return {
    data: str('data')!,
    out: str('out')!,
    val: str('val'),
    valSplit: str('val') ? 0 : num('val-split', 0.1, { min: 0, minOpen: false, max: 0.9 }),
    from: str('from'),
    preset,
    imageSize: opt('image-size'),
    patch: opt('patch'),
    channels: channels as 1 | 3 | undefined,
    hidden: opt('hidden'),
    layers: opt('layers'),
    heads: opt('heads'),
    mlp: opt('mlp'),
    epochs: num('epochs', 10, { int: true }),
    batch: num('batch', 32, { int: true, max: 4096 }),
    accumulate: num('accumulate', 1, { int: true, max: 1024 }),
    lr: num('lr', str('from') && fz !== 'all' ? 1e-4 : 1e-3), // a probe's head starts from scratch
    weightDecay: num('weight-decay', 0.05, { min: 0, minOpen: false }),
    warmup: num('warmup', 0.05, { min: 0, minOpen: false, max: 1 }),
    clip: num('clip', 1, { min: 0, minOpen: false }),
    augment,
    threads: num('threads', Math.min(defaultThreads, MAX_WORKERS), { int: true, max: MAX_WORKERS }),
    seed,
    resume: v.resume === true,
    recompute: v.recompute === true,
    patience: num('patience', 0, { int: true, min: 0, minOpen: false }),
    skipBad: v['skip-bad'] === true,
    cacheMb: num('cache-mb', 1024, { min: 0, minOpen: false }),
    freeze: fz === 'none' || fz === 'all' ? fz : Number(fz),
    labelSmoothing: num('label-smoothing', 0, { min: 0, minOpen: false, max: 0.99 }),
    layerDecay: num('layer-decay', 1, { max: 1 }),
  };
}
