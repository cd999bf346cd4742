// Files the CLI writes (checkpoints, exports): paths checked before the work that produces them,
// written atomically (a temporary file, then a rename), failures as one-line UserErrors.
import { accessSync, constants, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from './errors.js';

/** Refuses, before any training, a --save path whose checkpoint could not be written at the end. */
export function checkSavePath(file: string, flag = '--save'): void {
  const path = resolve(file);
  const dir = dirname(path);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new UserError(`${flag} ${file}: directory ${dir} does not exist`);
  }
  if (!isDir) throw new UserError(`${flag} ${file}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UserError(`${flag} ${file}: directory ${dir} is not writable`);
  }
  try {
    if (statSync(path).isDirectory()) throw new UserError(`${flag} ${file}: is a directory`);
  } catch (e) {
    if (e instanceof UserError) throw e; // else it does not exist yet: fine
  }
}

export function writeAtomically(file: string, data: Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    throw new UserError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Makes the directory `dir` (and its parents) for an option `flag`; a failure is a UserError. */
export function makeDirectory(dir: string, flag: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UserError(`${flag} ${dir}: cannot make the directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
