/**
 * The optional packages some commands need (declared as optional peer dependencies): a missing
 * one is named in one line, with the command that installs it, rather than as a stack trace.
 */

/** A command needs a package that is not installed. The CLI prints the message and exits 2. */
export class MissingPackageError extends Error {}

/** `name` imported, or a {@link MissingPackageError} saying that `what` needs it. */
export async function importOptional<T = unknown>(name: string, what: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if ((err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && err.message.includes(`'${name}'`))
      throw missing([name], what);
    throw e;
  }
}

/** Imports every package in `names`; if any is missing, one error names them all. */
export async function importAllOptional(names: string[], what: string): Promise<void> {
  const absent: string[] = [];
  for (const n of names)
    await importOptional(n, what).catch((e) => {
      if (e instanceof MissingPackageError) absent.push(n);
      else throw e;
    });
  if (absent.length) throw missing(absent, what);
}

/** The error for packages that cannot be found. */
export function missing(names: string[], what: string): MissingPackageError {
  const list =
    names.length === 1 ? `the npm package ${names[0]}, which is` : `the npm packages ${names.join(' and ')}, which are`;
  return new MissingPackageError(`vit-wasm: ${what} needs ${list} not installed: npm install ${names.join(' ')}`);
}
