import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AZURITE_DEV_CONNECTION_STRING } from '../../config.js';

/** A running Azurite blob service owned by this process. */
export interface AzuriteHandle {
  host: string;
  port: number;
  /** The development account's connection string pointing at this instance. */
  connectionString: string;
  /** The running process's id (undefined while stopped). */
  readonly pid: number | undefined;
  /** Graceful stop (SIGTERM, then SIGKILL if it lingers); resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL without any cleanup, as a crash or an outage would. */
  kill(): Promise<void>;
  /** Starts it again on the same port and location (an in-memory instance comes back empty). */
  restart(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** 0 or undefined: a free port chosen by the OS. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Folder for blobs and metadata; default: in memory (lost when the process ends). */
  location?: string;
  /** No access log, and nothing forwarded to this process's output. */
  silent?: boolean;
  /** How long to wait for it to listen (default 30000). */
  startTimeoutMs?: number;
}

const requireFromHere = createRequire(import.meta.url);

/** The installed package's own blob entry point (its `azurite-blob` bin), so no global install is needed. */
function blobEntryPoint(): string {
  const manifestPath = requireFromHere.resolve('azurite/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: Record<string, string> };
  const bin = manifest.bin?.['azurite-blob'];
  if (!bin) throw new Error(`${manifestPath} declares no azurite-blob bin`);
  return path.resolve(path.dirname(manifestPath), bin);
}

/** The development account's connection string with its blob endpoint at host:port. */
export function azuriteConnectionString(host: string, port: number): string {
  const hostPart = net.isIPv6(host) ? `[${host}]` : host;
  return AZURITE_DEV_CONNECTION_STRING.replace(/BlobEndpoint=[^;]*/, `BlobEndpoint=http://${hostPart}:${port}/devstoreaccount1`);
}

/**
 * Loaded into the child before Azurite: the IPC channel closes when this process ends in any way
 * (SIGKILL included, where no 'exit' hook runs), and then the child ends too. Unreferenced, so the
 * channel alone does not keep a gracefully stopped Azurite alive.
 */
const EXIT_WITH_PARENT = `data:text/javascript,${encodeURIComponent("process.channel?.unref(); process.on('disconnect', () => process.exit(0));")}`;

// Children of this process; the exit hook kills whatever is still running so none outlives us.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** True when something accepts a TCP connection at host:port within `timeoutMs`. */
export function portAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Starts Azurite's blob service as a child process and resolves once it accepts connections.
 * Rejects with the child's output if it exits first (a taken port, a Node version it refuses).
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<AzuriteHandle> {
  const host = options.host ?? '127.0.0.1';
  const entry = blobEntryPoint();
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  if (options.location) mkdirSync(options.location, { recursive: true });
  let port = options.port ?? 0;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const args = [
      entry,
      '--blobHost', host,
      '--blobPort', String(port),
      ...(options.location ? ['--location', options.location] : ['--inMemoryPersistence']),
      // Any SDK version may talk to it, unknown headers are ignored, and it phones no one home.
      '--skipApiVersionCheck',
      '--loose',
      '--disableTelemetry',
      ...(options.silent ? ['--silent'] : []),
    ];
    const c = spawn(process.execPath, ['--import', EXIT_WITH_PARENT, ...args], {
      // In memory it still checks its working folder exists; keep it out of the repository.
      cwd: options.location ?? os.tmpdir(),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    child = c;
    track(c);
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-8_000);
    };
    c.stdout!.on('data', keep);
    c.stderr!.on('data', keep);
    if (!options.silent) {
      c.stdout!.on('data', (d: Buffer) => process.stdout.write(d));
      c.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
    }

    const deadline = Date.now() + startTimeoutMs;
    let delay = 20;
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`Azurite exited (${c.exitCode ?? c.signalCode}) before listening on ${host}:${port || '(any port)'}:\n${output.trim()}`);
      }
      // Its own log line names the real port (the OS picks one when asked for 0); waiting for it
      // also tells us the listener is ours, not some other process already on a fixed port.
      const listening = /successfully listens on https?:\/\/\S*?:(\d+)/.exec(output);
      if (listening && (await portAnswers(host, Number(listening[1]), 1_000))) {
        port = Number(listening[1]);
        return;
      }
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`Azurite did not listen on ${host}:${port || '(any port)'} within ${startTimeoutMs} ms:\n${output.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 200);
    }
  };

  const stopChild = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = exited(c);
    c.kill(signal);
    if (signal === 'SIGTERM') {
      let timer: NodeJS.Timeout | undefined;
      const lingering = new Promise<'lingering'>((resolve) => {
        timer = setTimeout(() => resolve('lingering'), 5_000);
      });
      if ((await Promise.race([gone, lingering])) === 'lingering') c.kill('SIGKILL');
      clearTimeout(timer);
    }
    await gone;
  };

  await launch();
  const handle: AzuriteHandle = {
    host,
    port,
    connectionString: azuriteConnectionString(host, port),
    get pid() {
      return child?.pid;
    },
    stop: () => stopChild('SIGTERM'),
    kill: () => stopChild('SIGKILL'),
    async restart() {
      await stopChild('SIGTERM');
      await launch();
    },
  };
  return handle;
}

/** The blob endpoint a connection string points at (explicit `BlobEndpoint`, development storage or account + suffix). */
export function blobEndpointOf(connectionString: string): URL {
  const field = (name: string): string | undefined => new RegExp(`(?:^|;)\\s*${name}=([^;]*)`, 'i').exec(connectionString)?.[1]?.trim();
  const explicit = field('BlobEndpoint');
  if (explicit) return new URL(explicit);
  if (/UseDevelopmentStorage=true/i.test(connectionString)) return new URL('http://127.0.0.1:10000/devstoreaccount1');
  const account = field('AccountName');
  if (!account) throw new Error('the connection string names neither BlobEndpoint nor AccountName');
  const protocol = field('DefaultEndpointsProtocol') ?? 'https';
  return new URL(`${protocol}://${account}.blob.${field('EndpointSuffix') ?? 'core.windows.net'}`);
}

/**
 * True when an HTTP server answers at the connection string's blob endpoint within `timeoutMs`
 * (any status: `npm run dev` only needs to know whether to start an Azurite there).
 */
export async function blobStorageAnswers(connectionString: string, timeoutMs = 1_500): Promise<boolean> {
  let endpoint: URL;
  try {
    endpoint = blobEndpointOf(connectionString);
  } catch {
    return false;
  }
  const client = endpoint.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    const req = client.get(endpoint, { timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}
