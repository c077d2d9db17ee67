import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config.js';
import { coerceError } from '../logger.js';
import { blobStorageAnswers, startAzurite, type AzuriteHandle } from './lib/azurite.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `Usage: npm run dev

Runs Showrunner for development in one terminal: migrations (with a demo user), the web process
and the worker process, plus an in-memory Azurite when no blob storage answers at
AZURE_STORAGE_CONNECTION_STRING. Ctrl-C stops everything.`;

/** The host and port of the connection string's blob endpoint (Azurite's default when absent). */
function blobEndpoint(connectionString: string): { host: string; port: number } {
  const match = /BlobEndpoint=([^;]+)/i.exec(connectionString);
  const url = new URL(match?.[1] ?? 'http://127.0.0.1:10000/devstoreaccount1');
  return { host: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
}

function run(name: string, script: string, env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, script)], { cwd: root, env, stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`dev: ${name} exited (${code ?? signal}); stopping everything`);
      void shutdown(1);
    }
  });
  return child;
}

let stopping = false;
const children: ChildProcess[] = [];
let azurite: AzuriteHandle | undefined;

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(
    children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : (c.once('exit', () => resolve()), c.kill('SIGTERM'))))),
  );
  await azurite?.stop();
  process.exit(code);
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    console.log(HELP);
    return;
  }
  const env = { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'development' };
  const config = loadConfig(env);
  if (!(await blobStorageAnswers(config.azureStorageConnectionString))) {
    const { host, port } = blobEndpoint(config.azureStorageConnectionString);
    console.log(`dev: no blob storage at ${host}:${port}; starting Azurite there (in memory)`);
    azurite = await startAzurite({ host, port, silent: true });
  }
  const migrate = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/migrate.ts')], { cwd: root, env, stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => migrate.on('exit', resolve));
  if (code !== 0) throw new Error('migrations failed (is PostgreSQL running and DATABASE_URL right?)');
  children.push(run('web', 'server/main.ts', env), run('worker', 'workers/main.ts', env));
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
}

main().catch((e: unknown) => {
  console.error(`dev: ${coerceError(e).message}`);
  void shutdown(1);
});
