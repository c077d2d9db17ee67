import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { coerceError } from '../../logger.js';

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export const onPath = (command: string): boolean =>
  (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && isExecutable(path.join(dir, command)));

/** Runs a command to its end; rejects with the end of its output when it fails. */
export function run(command: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-4_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed (${code ?? signal}):\n${output.trim()}`)),
    );
  });
}

/** True where the tests may install Debian packages themselves: as root, with apt-get. */
export const canAptInstall = (): boolean => process.getuid?.() === 0 && onPath('apt-get');

/**
 * Installs Debian packages (the test run's global setup does this, before any suite and its time
 * limits). Rejects with `howToGetOne` when it fails.
 */
export async function aptInstall(packages: string[], howToGetOne: string): Promise<void> {
  console.log(`installing Debian's ${packages.join(', ')} for the tests (apt-get update && apt-get install)`);
  // Waits for another apt/dpkg run (say a second test run installing too) rather than failing on its lock.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  try {
    await run('apt-get', [...lock, 'update', '-qq']);
    await run('apt-get', [...lock, 'install', '-y', '-qq', ...packages], { DEBIAN_FRONTEND: 'noninteractive' });
  } catch (e: unknown) {
    throw new Error(`could not install ${packages.join(', ')} (${coerceError(e).message}): ${howToGetOne}`);
  }
}
