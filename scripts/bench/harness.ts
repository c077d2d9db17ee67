import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadConfig, type Config } from '../../config.js';
import { dropDatabase, ensureDatabase } from '../../db/database.js';
import { createKnex, type Knex } from '../../db/knex.js';
import { migrateLatest } from '../../db/migrate.js';
import { createUser } from '../../db/users.js';
import { JobProducer } from '../../workers/queues/producer.js';
import { BlobStore } from '../../workers/storage/blob-storage.js';
import { startAzurite, type AzuriteHandle } from '../lib/azurite.js';
import { childrenOf, freePort, startServiceProcess, type ServiceProcess } from '../lib/child-process.js';
import { deleteQueueKeys } from '../lib/queue-keys.js';

export const SNAPSHOT_ITEM_BYTES = 500 * 1024;
/** The large items at `/big/<n>.jpg`: 25 MB, under the default `MEDIA_MAX_BYTES` (25 MiB). */
export const BIG_ITEM_BYTES = 25 * 1000 * 1000;

/**
 * Item `n` of {@link BIG_ITEM_BYTES}, made as it is sent: 1 MiB of a seeded hash chain per block,
 * each block stamped with `n` and its index, so every block of every item differs and nothing big
 * is committed or kept in memory.
 */
function serveBigItem(base: Buffer, n: number, res: http.ServerResponse, validators: Record<string, string>): void {
  res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': BIG_ITEM_BYTES, ...validators });
  let sent = 0;
  const pump = (): void => {
    while (sent < BIG_ITEM_BYTES) {
      const block = Buffer.from(base.subarray(0, Math.min(base.length, BIG_ITEM_BYTES - sent)));
      block.write(`${n}:${sent}:`, 0, 'latin1');
      sent += block.length;
      if (!res.write(block)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

function hashChain(bytes: number, seed: string): Buffer {
  const out = Buffer.alloc(bytes);
  let h = createHash('sha256').update(seed).digest();
  for (let at = 0; at < bytes; at += h.length) {
    h.copy(out, at);
    h = createHash('sha256').update(h).digest();
  }
  return out;
}

/** The renditions Reddit lists for a 1920×1080 image (`preview.images[].resolutions`). */
export const PREVIEW_WIDTHS = [108, 216, 320, 640, 960, 1080];

/**
 * A local media host: 1920×1080 JPEGs at `/img/<n>.jpg`, their smaller renditions at
 * `/img/<n>-<width>.jpg`, a Reddit listing of `limit` such posts at `/r/<any>/hot.json` that
 * describes the renditions as Reddit does (sizes, HTML-escaped URLs with a query), and distinct
 * ~500 KB files at `/blob/<n>.jpg` (random bytes labelled image/jpeg: a snapshot copies bytes, it
 * does not decode), and distinct 25 MB ones at `/big/<n>.jpg`, generated as they are sent. Each
 * answer carries a strong ETag and a year's max-age, and a conditional GET naming the tag is
 * answered 304, as a CDN of immutable media does.
 */
export interface MediaHost {
  baseUrl: string;
  jpeg: Buffer;
  blob(n: number): Buffer;
  close(): Promise<void>;
}

async function startMediaHost(): Promise<MediaHost> {
  const jpeg = await sharp({ create: { width: 1920, height: 1080, channels: 3, background: { r: 40, g: 90, b: 160 } } })
    .composite([{ input: Buffer.from(`<svg width="1920" height="1080"><circle cx="960" cy="540" r="400" fill="orange"/></svg>`) }])
    .jpeg({ quality: 85 })
    .toBuffer();
  const blobs = new Map<number, Buffer>();
  const blob = (n: number): Buffer => {
    let b = blobs.get(n);
    if (!b) blobs.set(n, (b = randomBytes(SNAPSHOT_ITEM_BYTES)));
    return b;
  };
  const bigBase = hashChain(1024 * 1024, 'bench-big');
  const heightAt = (width: number): number => Math.round((width * 1080) / 1920);
  const renditions = new Map(
    await Promise.all(PREVIEW_WIDTHS.map(async (w) => [w, await sharp(jpeg).resize(w, heightAt(w)).jpeg({ quality: 85 }).toBuffer()] as const)),
  );
  let baseUrl = '';
  const listing = (limit: number): unknown => ({
    kind: 'Listing',
    data: {
      children: Array.from({ length: limit }, (_, i) => ({
        kind: 't3',
        data: {
          id: `bench${i}`,
          title: `Bench ${i}`,
          subreddit: 'bench',
          permalink: `/r/bench/comments/bench${i}/x/`,
          url: `${baseUrl}/img/${i}.jpg`,
          post_hint: 'image',
          preview: {
            images: [
              {
                source: { url: `${baseUrl}/img/${i}.jpg`, width: 1920, height: 1080 },
                resolutions: PREVIEW_WIDTHS.map((w) => ({ url: `${baseUrl}/img/${i}-${w}.jpg?width=${w}&amp;crop=smart&amp;s=bench`, width: w, height: heightAt(w) })),
              },
            ],
          },
        },
      })),
    },
  });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://bench.invalid');
    if (/^\/r\/[^/]+\/hot\.json$/.test(url.pathname)) {
      const body = JSON.stringify(listing(Number(url.searchParams.get('limit') ?? 25)));
      return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    }
    // Every file's bytes are fixed for the host's life, so its path is a strong ETag, and it says
    // so for a year, as a CDN of immutable media (Reddit's among them) does; a request naming the
    // tag gets a 304.
    const validators = { etag: `"${url.pathname}"`, 'cache-control': 'public, max-age=31536000, immutable' };
    if (req.headers['if-none-match'] === validators.etag) return void res.writeHead(304, validators).end();
    const big = /^\/big\/(\d+)\.jpg$/.exec(url.pathname);
    if (big) return serveBigItem(bigBase, Number(big[1]), res, validators);
    const m = /^\/(img|blob)\/(\d+)(?:-(\d+))?\.jpg$/.exec(url.pathname);
    const body = !m ? undefined : m[1] === 'blob' ? blob(Number(m[2])) : m[3] ? renditions.get(Number(m[3])) : jpeg;
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length, ...validators }).end(body);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  baseUrl = `http://127.0.0.1:${port}`;
  return { baseUrl, jpeg, blob, close: () => new Promise((r) => server.close(() => r())) };
}

export interface Bench {
  config: Config;
  env: Record<string, string>;
  knex: Knex;
  media: MediaHost;
  azurite: AzuriteHandle;
  blobs: BlobStore;
  producer: JobProducer;
  web: ServiceProcess;
  worker: ServiceProcess;
  webUrl: string;
  /** The web's `/metrics`, served on a listener of its own (`METRICS_PORT`). */
  metricsUrl: string;
  user: { id: string; email: string; password: string; cookie: string };
  close(): Promise<void>;
}

/**
 * Everything the benchmark measures, on its own: a database `<name>_bench`, a Redis prefix, an
 * Azurite and a media host of its own, and the web and worker as real processes.
 */
export async function startBench(log: (line: string) => void): Promise<Bench> {
  // What the Procfile runs: the compiled build, not the TypeScript source through tsx. Built before
  // anything else is made, so a build that fails leaves nothing behind.
  log('building dist/ (npm run build)');
  await buildDist();
  const base = loadConfig({ ...process.env, NODE_ENV: 'production', SESSION_SECRET: 'x'.repeat(32) });
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `${dbUrl.pathname}_bench`;
  const databaseUrl = dbUrl.toString();
  log(`database ${dbUrl.pathname.slice(1)}, fresh`);
  await ensureDatabase(databaseUrl, { recreate: true });
  const knex = createKnex({ databaseUrl, poolMax: 40, applicationName: 'showrunner-bench' });
  await migrateLatest(knex);

  const [media, azurite, port, metricsPort] = await Promise.all([startMediaHost(), startAzurite({ silent: true }), freePort(), freePort()]);
  const env: Record<string, string> = {
    // Production settings but plain HTTP on loopback (production would set Secure cookies).
    NODE_ENV: 'development',
    // As deployed on this machine: a web process per core (WEB_CONCURRENCY in the environment wins).
    WEB_CONCURRENCY: process.env.WEB_CONCURRENCY ?? String(os.cpus().length),
    LOG_PRETTY: 'false',
    LOG_LEVEL: 'info',
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
    DATABASE_URL: databaseUrl,
    REDIS_URL: base.redisUrl,
    QUEUE_PREFIX: `bench-${randomBytes(4).toString('hex')}`,
    AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    REDDIT_BASE_URL: media.baseUrl,
    MEDIA_ALLOW_PRIVATE_HOSTS: 'true',
    SESSION_SECRET: randomBytes(32).toString('hex'),
    LOGIN_MAX_FAILURES: '1000',
    // The bench measures throughput, not the API-wide rate limit.
    API_RATE_LIMIT: '0',
  };
  const config = loadConfig({ ...process.env, ...env });
  const blobs = BlobStore.fromConnectionString(config.azureStorageConnectionString, config.blobContainers);
  await blobs.ensureContainers();
  const producer = JobProducer.fromConfig(config, 'showrunner-bench');

  // BENCH_PROFILE=<dir> writes V8 CPU profiles of both processes there (open them in Chrome DevTools).
  const profile = (name: string): string[] =>
    process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}/${name}`] : [];
  const started: { web?: ServiceProcess; worker?: ServiceProcess } = {};
  /** Removes what the bench made; `worker`: the one running now (a part may have restarted it, scripts/bench/completion.ts). */
  const removeAll = async (worker = started.worker): Promise<void> => {
    await Promise.allSettled([started.web?.stop(), worker?.stop()]);
    await producer.close();
    await deleteQueueKeys(config.redisUrl, config.queuePrefix);
    await Promise.allSettled([azurite.stop(), media.close()]);
    await knex.destroy();
    await dropDatabase(databaseUrl);
  };
  try {
    started.web = await startServiceProcess('server/main.ts', env, '"web listening"', { timeoutMs: 60_000, nodeArgs: profile('web'), compiled: true });
    started.worker = await startServiceProcess('workers/main.ts', env, '"worker started"', { timeoutMs: 60_000, nodeArgs: profile('worker'), compiled: true });
    const webUrl = `http://127.0.0.1:${port}`;

    const password = randomBytes(12).toString('hex');
    const created = await createUser(knex, { email: `bench-${Date.now()}@bench.local`, password }, config.passwordScryptCost);
    const login = await fetch(`${webUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: created!.email, password }),
    });
    if (!login.ok) throw new Error(`bench login failed: ${login.status} ${await login.text()}`);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;

    return {
      config,
      env,
      knex,
      media,
      azurite,
      blobs,
      producer,
      web: started.web,
      worker: started.worker,
      webUrl,
      metricsUrl: `http://127.0.0.1:${metricsPort}`,
      user: { id: created!.id, email: created!.email, password, cookie },
      async close(this: Bench) {
        await removeAll(this.worker);
      },
    };
  } catch (e) {
    // The queues' keys, with their random prefix, would otherwise stay in Redis for good.
    await removeAll().catch(() => undefined);
    throw e;
  }
}

/** `npm run build`: tsc with tsconfig.build.json into dist/. */
async function buildDist(): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..') }, (err, stdout, stderr) =>
      err ? reject(new Error(`npm run build failed:\n${stdout}${stderr}`)) : resolve(),
    );
  });
}

let checkpointRefused = false;

/**
 * Settles the bench's database before a part starts: `VACUUM ANALYZE` of the whole (bench-owned)
 * database, for the visibility map and the planner, then `CHECKPOINT`, so that autovacuum and the
 * checkpointer do not clean up after one part during the next one's measurements. A role that may
 * not checkpoint (neither superuser nor `pg_checkpoint`) is told once, and the bench goes on without.
 * `tables` narrows the VACUUM to those; the CHECKPOINT then writes what it dirtied, which on a
 * large table (index cleanup of 5,000,000 outbox rows) would otherwise be written during the
 * figures measured next.
 */
export async function settleDatabase(bench: Pick<Bench, 'knex'>, log: (line: string) => void, tables: string[] = []): Promise<void> {
  await bench.knex.raw(`VACUUM ANALYZE ${tables.map((t) => bench.knex.raw('??', [t]).toQuery()).join(', ')}`);
  if (checkpointRefused) return;
  try {
    await bench.knex.raw('CHECKPOINT');
  } catch (e) {
    if ((e as { code?: string }).code !== '42501') throw e;
    checkpointRefused = true;
    log('CHECKPOINT is not permitted for this role: each part may be slowed by the writes of the one before');
  }
}

/**
 * Polls until `probe` is truthy; the benchmark fails loudly past the deadline, saying what it waited
 * for (`what` may be a function, to name the state at that moment: how many rows were left).
 */
export async function until<T>(what: string | (() => string), probe: () => Promise<T | undefined | false>, timeoutMs = 120_000, everyMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`benchmark timed out after ${timeoutMs / 1000} s waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Sets a process's peak resident memory (VmHWM) back to its current one, to measure one run's peak. */
export function resetPeakRss(pid: number | undefined): void {
  if (pid) writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** Peak resident memory (VmHWM) of a process, in MB, and of each of its children (the web's processes). */
export function peakRssMb(pid: number | undefined): number[] {
  if (!pid) return [NaN];
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return [kb / 1024, ...childrenOf(pid).flatMap((child) => peakRssMb(child))];
}

/** /proc/<pid>/stat's fields after the parenthesised command name (field 3 is index 0). */
function statFields(pid: number | string): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return null; // the process has ended
  }
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/**
 * CPU time (user + system) a process and its children (the web's processes under WEB_CONCURRENCY)
 * have used so far, in ms; ended children it has reaped included.
 */
export function cpuMs(pid: number | undefined): number {
  const fields = pid ? statFields(pid) : null;
  if (!pid || !fields) return NaN;
  const own = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * TICK_MS;
  return own + childrenOf(pid).reduce((sum, child) => sum + (cpuMs(child) || 0), 0);
}

/** Whether a process is PostgreSQL's (the postmaster or one of its backends and helpers). */
function isPostgres(pid: number | string): boolean {
  try {
    return ['postgres', 'postmaster'].includes(readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
  } catch {
    return false; // ended, or not ours to read
  }
}

/**
 * CPU used so far by every PostgreSQL process on this machine, ended backends included: the
 * postmaster (the one whose parent is not PostgreSQL) reaps them, so their time is in its
 * children's counters.
 */
function postgresCpuMs(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || !isPostgres(pid)) continue;
    const f = statFields(pid);
    if (!f) continue;
    ticks += Number(f[11]) + Number(f[12]);
    if (!isPostgres(f[1]!)) ticks += Number(f[13]) + Number(f[14]);
  }
  return ticks * TICK_MS;
}

/** Busy (not idle) CPU of the whole machine so far, in ms. */
function machineBusyMs(): number {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = values.map(Number);
  const idle = n[3]! + n[4]!;
  return (n.reduce((a, b) => a + b, 0) - idle) * TICK_MS;
}

export type CpuShare = Record<'web' | 'worker' | 'azurite' | 'postgres' | 'bench' | 'machine', number>;

/**
 * Where the CPU went during one measured run: ms per operation for each process of the bench, and
 * for the whole machine (everything else included). `stop(ops)` divides by the operations done.
 */
export function cpuMeter(bench: Pick<Bench, 'web' | 'worker' | 'azurite'>): { stop(ops: number): CpuShare } {
  const read = (): CpuShare => {
    const self = process.cpuUsage();
    return {
      web: cpuMs(bench.web.child.pid),
      worker: cpuMs(bench.worker.child.pid),
      azurite: cpuMs(bench.azurite.pid),
      postgres: postgresCpuMs(),
      bench: (self.user + self.system) / 1000,
      machine: machineBusyMs(),
    };
  };
  const before = read();
  return {
    stop(ops) {
      const after = read();
      const share = {} as CpuShare;
      for (const k of Object.keys(before) as (keyof CpuShare)[]) share[k] = (after[k] - before[k]) / ops;
      return share;
    },
  };
}
