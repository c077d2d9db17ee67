import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<number | string>;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | string>;
}

/**
 * Runs `workers/main.ts` as a separate process, as the Procfile's worker line does, with the given
 * environment on top of this one. Resolves once it logs that it started.
 */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'workers/main.ts')], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info', LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')));
  let ended: number | string | undefined;
  void exited.then((c) => (ended = c));
  process.once('exit', () => child.kill('SIGKILL'));
  await waitFor('the worker process to start', () => {
    if (ended !== undefined) throw new Error(`worker exited (${ended}) before starting:\n${output.slice(-3000)}`);
    return output.includes('"worker started"');
  }, { timeoutMs: 30_000 });
  return {
    child,
    output: () => output,
    exited,
    signal: (sig) => void child.kill(sig),
    async stop() {
      if (ended === undefined) child.kill('SIGTERM');
      return exited;
    },
  };
}
