import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { coerceError } from '../../logger.js';

/** Where Debian's `chromium` package puts the browser. */
const DEBIAN_CHROMIUM = '/usr/bin/chromium';

const HOW_TO_GET_ONE =
  'install Debian\'s "chromium" package (apt-get install chromium; the tests do that themselves when run as root) ' +
  'or set CHROMIUM_PATH to a Chromium or Chrome executable';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

const onPath = (command: string): boolean =>
  (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && isExecutable(path.join(dir, command)));

/** Runs a command to its end; rejects with the end of its output when it fails. */
function run(command: string, args: string[], env: Record<string, string> = {}): Promise<void> {
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

/**
 * The Chromium the browser tests drive (playwright-core downloads none): CHROMIUM_PATH if set, else
 * Debian's at /usr/bin/chromium, else, as root where apt-get exists, that package installed now
 * (which takes a few minutes). Rejects with how to get one when none can be had: the tests that
 * need it fail rather than skip.
 */
export async function findChromium(): Promise<string> {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) {
    if (isExecutable(configured)) return configured;
    throw new Error(`CHROMIUM_PATH=${configured} is not an executable file: ${HOW_TO_GET_ONE}`);
  }
  if (isExecutable(DEBIAN_CHROMIUM)) return DEBIAN_CHROMIUM;
  if (process.getuid?.() !== 0 || !onPath('apt-get')) {
    throw new Error(`no Chromium at ${DEBIAN_CHROMIUM} and CHROMIUM_PATH is not set: ${HOW_TO_GET_ONE}`);
  }
  console.log(`no Chromium at ${DEBIAN_CHROMIUM}: installing Debian's "chromium" package (apt-get update && apt-get install chromium)`);
  // Waits for another apt/dpkg run (say a second test run installing too) rather than failing on its lock.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  try {
    await run('apt-get', [...lock, 'update', '-qq']);
    await run('apt-get', [...lock, 'install', '-y', '-qq', 'chromium'], { DEBIAN_FRONTEND: 'noninteractive' });
  } catch (e: unknown) {
    throw new Error(`could not install Chromium (${coerceError(e).message}): ${HOW_TO_GET_ONE}`);
  }
  if (!isExecutable(DEBIAN_CHROMIUM)) throw new Error(`apt-get installed "chromium" but ${DEBIAN_CHROMIUM} is not there: ${HOW_TO_GET_ONE}`);
  return DEBIAN_CHROMIUM;
}
