import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServiceProcess {
  child: ChildProcess;
  /** What the process wrote so far, its newest 1-2 MB (for failure messages and log assertions). */
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  /** True once the process has ended. */
  hasExited(): boolean;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<number | string>;
}

export interface ServiceProcessOptions {
  /** How long to wait for `readyText` (default 30000). */
  timeoutMs?: number;
  /** Extra `node` flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /**
   * Run the compiled `dist/` build (`npm run build`) as the Procfile does, instead of the TypeScript
   * source through tsx as `npm run web|worker` do.
   */
  compiled?: boolean;
  /** Start it as the leader of a process group of its own, so a test can signal the group (`process.kill(-pid)`). */
  detached?: boolean;
}

/** `server/main.ts` → `dist/server/main.js`: where `npm run build` puts an entry point. */
export function compiledEntry(entry: string): string {
  return path.join(root, 'dist', entry.replace(/\.ts$/, '.js'));
}

/**
 * Runs one of the project's entry points (`server/main.ts`, `workers/main.ts`) as its own process
 * and resolves once its output contains `readyText`. Used by the tests and the benchmark; killed
 * with this process if still running.
 */
export async function startServiceProcess(
  entry: string,
  env: Record<string, string>,
  readyText: string,
  { timeoutMs = 30_000, nodeArgs = [], compiled = false, detached = false }: ServiceProcessOptions = {},
): Promise<ServiceProcess> {
  const script = compiled ? [compiledEntry(entry)] : ['--import', 'tsx', path.join(root, entry)];
  const child = spawn(process.execPath, [...nodeArgs, ...script], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info', LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  // The newest 1 MB of output: enough for failure messages, bounded for long runs (the benchmark).
  let output = '';
  const keep = (d: Buffer): void => {
    output += d.toString();
    if (output.length > 2_000_000) output = output.slice(-1_000_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let ended: number | string | undefined;
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve((ended = code ?? sig ?? 'unknown'))));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));

  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`${entry} did not start within ${timeoutMs} ms:\n${output.slice(-3000)}`));
    }, timeoutMs);
    const poll = setInterval(() => {
      if (output.includes(readyText)) {
        clearInterval(poll);
        clearTimeout(deadline);
        resolve();
      } else if (ended !== undefined) {
        clearInterval(poll);
        clearTimeout(deadline);
        reject(new Error(`${entry} exited (${ended}) before starting:\n${output.slice(-3000)}`));
      }
    }, 25);
  });

  return {
    child,
    output: () => output,
    exited,
    hasExited: () => ended !== undefined,
    signal: (sig) => void child.kill(sig),
    async stop() {
      if (ended === undefined) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Whether a process of this id exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process's direct children (none once it has ended): the web's processes under WEB_CONCURRENCY. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A free TCP port on 127.0.0.1 (bound, then released) for a service this process starts. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
