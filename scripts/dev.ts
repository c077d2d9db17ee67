import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, STOP_WITH_PARENT_ENV } from '../config.js';
import { SHUTDOWN_MESSAGE } from '../lifecycle.js';
import { coerceError } from '../logger.js';
import { blobStorageAnswers, startAzurite, type AzuriteHandle } from './lib/azurite.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `Usage: npm run dev

Runs Showrunner for development in one terminal: migrations (with a demo user), the web process
and the worker process, plus an Azurite when no blob storage answers at
AZURE_STORAGE_CONNECTION_STRING, its blobs kept in DEV_AZURITE_LOCATION (.data/azurite by default).
Ctrl-C (or SIGTERM) stops everything gracefully; a second one forces.
Exits non-zero when a process did not stop cleanly.`;

/** The host and port of the connection string's blob endpoint (Azurite's default when absent). */
function blobEndpoint(connectionString: string): { host: string; port: number } {
  const match = /BlobEndpoint=([^;]+)/i.exec(connectionString);
  const url = new URL(match?.[1] ?? 'http://127.0.0.1:10000/devstoreaccount1');
  return { host: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
}

interface Service {
  name: string;
  child: ChildProcess;
  /** The exit code, or the signal's name. */
  exited: Promise<number | string>;
}

function run(name: string, script: string, env: NodeJS.ProcessEnv): Service {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, script)], {
    cwd: root,
    env: { ...env, [STOP_WITH_PARENT_ENV]: '1' },
    // Stop requests go over the IPC channel, not as signals: Ctrl-C already reaches the child, and a
    // signal passed on would be its second, which forces. The channel closing tells it dev is gone.
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      if (!stopping) {
        console.error(`dev: ${name} exited (${code ?? signal}); stopping everything`);
        void shutdown(1);
      }
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  return { name, child, exited };
}

/** Asks a service to stop gracefully (or, `force`, at once) over its IPC channel; by signal once that is gone. */
function askToStop({ child }: Service, force: boolean): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const bySignal = (): void => void child.kill(force ? 'SIGKILL' : 'SIGTERM');
  if (child.connected) child.send({ type: SHUTDOWN_MESSAGE, force }, (e) => e && bySignal());
  else bySignal();
}

let stopping = false;
let signals = 0;
const services: Service[] = [];
let azurite: AzuriteHandle | undefined;

/** Stops every service and Azurite, then exits: non-zero when asked to or when a service did not stop cleanly. */
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const s of services) askToStop(s, false);
  const ends = await Promise.all(services.map(async (s) => ({ name: s.name, end: await s.exited })));
  const unclean = ends.filter(({ end }) => end !== 0);
  if (unclean.length > 0) console.error(`dev: did not stop cleanly: ${unclean.map(({ name, end }) => `${name} (${end})`).join(', ')}`);
  await azurite?.stop();
  process.exit(unclean.length > 0 ? 1 : code);
}

/** The first Ctrl-C or SIGTERM stops everything gracefully; another one forces. */
function onSignal(signal: NodeJS.Signals): void {
  signals += 1;
  if (signals === 1) return void shutdown(0);
  console.error(`dev: second ${signal}: forcing every process to stop`);
  for (const s of services) askToStop(s, true);
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    console.log(HELP);
    return;
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const env = { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'development' };
  const config = loadConfig(env);
  if (!(await blobStorageAnswers(config.azureStorageConnectionString))) {
    const { host, port } = blobEndpoint(config.azureStorageConnectionString);
    // On disk by default: the development database persists, and thumbnails it names must too.
    const location = config.devAzuriteLocation === null ? undefined : path.resolve(root, config.devAzuriteLocation);
    console.log(`dev: no blob storage at ${host}:${port}; starting Azurite there (${location ? `blobs kept in ${location}` : 'in memory'})`);
    azurite = await startAzurite({ host, port, silent: true, ...(location ? { location } : {}) });
  }
  const migrate = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/migrate.ts')], { cwd: root, env, stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => migrate.on('exit', resolve));
  if (code !== 0) throw new Error('migrations failed (is PostgreSQL running and DATABASE_URL right?)');
  if (stopping) return;
  services.push(run('web', 'server/main.ts', env), run('worker', 'workers/main.ts', env));
}

main().catch((e: unknown) => {
  console.error(`dev: ${coerceError(e).message}`);
  void shutdown(1);
});
