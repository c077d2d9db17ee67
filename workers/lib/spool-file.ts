import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Runs `fn` with the path of a file that does not exist yet, in a directory of its own under the
 * system's temporary directory, and removes the directory afterwards whatever happened. A stream
 * still closing after a failure then cannot leave the file behind: its directory is gone.
 */
export async function withSpoolFile<T>(fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'showrunner-spool-'));
  try {
    return await fn(path.join(dir, 'body'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
