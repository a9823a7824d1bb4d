/** Rebuilds each stale stage (kernels, bundles) in order; returns what it rebuilt. */
export function ensureBuilt(opts?: { log?: (line: string) => void }): string[];
/** Marks every stage fresh for the sources as they are now (after a full build). */
export function stampBuilt(): void;
