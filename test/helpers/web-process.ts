import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.js';
import { waitFor } from './wait.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface WebProcess {
  child: ChildProcess;
  baseUrl: string;
  output(): string;
  exited: Promise<number | string>;
}

/** Runs `server/main.ts` as its own process (as the Procfile's web line does) on a free port. */
export async function startWebProcess(env: Record<string, string>): Promise<WebProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'server/main.ts')], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info', LOG_PRETTY: 'false', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let ended: number | string | undefined;
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve((ended = code ?? sig ?? 'unknown'))));
  process.once('exit', () => child.kill('SIGKILL'));
  await waitFor('the web process to listen', () => {
    if (ended !== undefined) throw new Error(`web exited (${ended}) before listening:\n${output.slice(-3000)}`);
    return output.includes('"web listening"');
  }, { timeoutMs: 30_000 });
  return { child, baseUrl: `http://127.0.0.1:${port}`, output: () => output, exited };
}
