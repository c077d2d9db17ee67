import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import { ensureDatabase, dropDatabase } from '../db/database.js';
import { childrenOf, freePort, isAlive, startServiceProcess } from '../scripts/lib/child-process.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { servedBy, startWebProcess, type WebProcess } from './helpers/web-process.js';
import { waitFor } from './helpers/wait.js';

/** A GET on a connection of its own, so the supervisor hands each one to the next process. */
function getOnNewConnection(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${baseUrl}${path}`, { agent: false, headers: { ...headers, connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/**
 * The local ports of a process's established TCP connections to `remotePort`: its sockets (the
 * inodes its file descriptors name) looked up in the kernel's TCP tables (Linux's /proc).
 */
function tcpPortsTo(pid: number, remotePort: number): number[] {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return [/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]].filter((inode) => inode !== undefined);
      } catch {
        return []; // closed meanwhile
      }
    }),
  );
  const ESTABLISHED = '01';
  return ['tcp', 'tcp6']
    .flatMap((table) => readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1))
    .map((row) => row.trim().split(/\s+/))
    .filter(([, , remote, state, , , , , , inode]) => state === ESTABLISHED && inodes.has(inode!) && parseInt(remote!.split(':')[1]!, 16) === remotePort)
    .map(([, local]) => parseInt(local!.split(':')[1]!, 16));
}

/** The value of one sample line (`name{labels} value`) of a Prometheus text, or undefined. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('WEB_CONCURRENCY: several web processes behind one port', function () {
  this.timeout(60_000);
  let stack: JobStack;
  let web: WebProcess | undefined;

  before(async () => {
    stack = await startJobStack();
  });
  afterEach(async () => {
    await web?.stop();
    web = undefined;
  });
  after(async () => stack?.close());

  it('two processes share the port and the work; /metrics adds up their requests but not the queue depth they both read', async () => {
    web = await startWebProcess({ ...stack.env, WEB_CONCURRENCY: '2' });
    expect(childrenOf(web.child.pid!)).to.have.length(2);
    for (let i = 0; i < 10; i++) expect((await getOnNewConnection(web.baseUrl, '/healthz')).status).to.equal(200);
    // Request lines are written in batches (up to 4 KB or 250 ms): wait for all ten.
    const healthzLines = (): string[] => web!.output().split('\n').filter((l) => l.includes('"path":"/healthz"'));
    await waitFor('the ten request lines', () => healthzLines().length === 10, { timeoutMs: 5_000 });
    const pids = new Set(healthzLines().map((l) => (JSON.parse(l) as { pid: number }).pid));
    expect(pids.size, 'both processes served requests').to.equal(2);

    // Three jobs waiting, and no worker to take them: each process reads 3 from Redis.
    for (let i = 0; i < 3; i++) await stack.producer.queues.media.add('sync', { sessionId: 1_000_000 + i });
    const metrics = await (await fetch(web.metricsUrl)).text();
    expect((await getOnNewConnection(web.baseUrl, '/metrics')).status, 'no /metrics on the API port').to.equal(404);
    expect(sample(metrics, 'showrunner_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}')).to.equal(10);
    expect(sample(metrics, 'showrunner_queue_jobs{queue="media",state="waiting"}')).to.equal(3);
  });

  it('each web process holds at most DATABASE_POOL_MAX connections to Postgres', async () => {
    web = await startWebProcess({ ...stack.env, WEB_CONCURRENCY: '2', DATABASE_POOL_MAX: '2' });
    const processes = childrenOf(web.child.pid!);
    expect(processes).to.have.length(2);
    const database = new URL(stack.env.DATABASE_URL!);
    // 40 readiness checks at once, each needing a connection: pools of 10 would open up to 10 each.
    const answers = await Promise.all(Array.from({ length: 40 }, () => getOnNewConnection(web!.baseUrl, '/readyz')));
    expect(answers.map((a) => a.status)).to.deep.equal(Array(40).fill(200));
    // Each process's own connections, from the kernel's socket table; Postgres sees the same ones.
    const held = processes.map((pid) => tcpPortsTo(pid, Number(database.port || 5432)));
    const seen = (await stack.knex('pg_stat_activity')
      .where({ datname: database.pathname.slice(1), application_name: 'showrunner-web' })
      .pluck('client_port')) as number[];
    expect(held.flat().sort(), 'the processes\' connections are the web connections Postgres has').to.deep.equal([...seen].sort());
    for (const [i, ports] of held.entries()) expect(ports.length, `connections of web process ${processes[i]}`).to.be.within(1, 2);
  });

  it('a process that dies is replaced; until the replacement serves, the other answers every request; SIGTERM stops every process cleanly', async function () {
    // A new process takes seconds to boot on a busy machine, and the requests go on all that time.
    this.timeout(120_000);
    web = await startWebProcess({ ...stack.env, WEB_CONCURRENCY: '2' });
    const supervisor = web.child.pid!;
    const [victim, survivor] = childrenOf(supervisor) as [number, number];
    process.kill(victim, 'SIGKILL');
    // Connections the supervisor handed to the victim before it reaped it are lost with it (they hang,
    // unanswered), so this starts once it is reaped: one request after another, each on a connection
    // of its own, until one is served by a process that is neither the victim nor the survivor.
    await waitFor('the killed process to be reaped', () => !isAlive(victim));
    const gap: { status: number | string; pid: number }[] = [];
    let replacement: number | undefined;
    for (let i = 0; replacement === undefined; i++) {
      expect(i, 'requests sent without the replacement serving one').to.be.below(10_000);
      const requestId = `gap-${i}`;
      const answer = await getOnNewConnection(web.baseUrl, '/healthz', { 'x-request-id': requestId }).catch((e: NodeJS.ErrnoException) => ({ status: e.code ?? e.message }));
      const pid = answer.status === 200 ? await waitFor(`the log line of request ${requestId}`, () => servedBy(web!, requestId), { intervalMs: 5 }) : -1;
      if (pid === survivor || pid === -1) gap.push({ status: answer.status, pid });
      else replacement = pid;
    }
    expect(gap.length, 'requests during the gap').to.be.above(0);
    expect(gap.filter((g) => g.status !== 200 || g.pid !== survivor), 'requests the survivor did not answer with 200').to.deep.equal([]);
    expect(replacement).to.not.equal(victim);
    const replaced = childrenOf(supervisor);
    expect(replaced.sort()).to.deep.equal([survivor, replacement].sort());
    for (let i = 0; i < 6; i++) expect((await getOnNewConnection(web.baseUrl, '/healthz')).status).to.equal(200);

    expect(await web.stop()).to.equal(0);
    for (const pid of replaced) expect(isAlive(pid), `web process ${pid} is gone`).to.equal(false);
  });

  it('a signal that reaches the supervisor and its processes alike (Ctrl-C, a platform stopping the group) is one graceful stop', async () => {
    web = await startWebProcess({ ...stack.env, WEB_CONCURRENCY: '2', SHUTDOWN_GRACE_MS: '5000' });
    const supervisor = web.child.pid!;
    const processes = childrenOf(supervisor);
    // A request still arriving keeps one process busy stopping (the other is done at once).
    const { port } = new URL(web.baseUrl);
    const pending = net.connect(Number(port), '127.0.0.1');
    pending.on('error', () => undefined);
    await new Promise<void>((resolve) => pending.once('connect', () => resolve()));
    pending.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    // The supervisor's stop request reaches the processes first, then the signal itself.
    process.kill(supervisor, 'SIGINT');
    await waitFor('one process still stopping', () => processes.filter(isAlive).length === 1);
    for (const pid of processes.filter(isAlive)) process.kill(pid, 'SIGINT');
    pending.end('\r\n');
    expect(await web.exited).to.equal(0);
    expect(web.output()).not.to.include('forcing exit');
    expect(web.output().split('"shut down cleanly"').length - 1, 'the supervisor and both processes stopped cleanly').to.equal(3);
    for (const pid of processes) expect(isAlive(pid)).to.equal(false);
  });

  it('a process that cannot start stops the supervisor with exit 1 and the reason', async () => {
    // A database without the schema: every web process refuses to start.
    const url = new URL(stack.env.DATABASE_URL!);
    url.pathname = `${url.pathname}_unmigrated`;
    await ensureDatabase(url.toString(), { recreate: true });
    try {
      const port = await freePort();
      let failure: Error | undefined;
      try {
        await startServiceProcess('server/main.ts', { ...stack.env, DATABASE_URL: url.toString(), WEB_CONCURRENCY: '2', PORT: String(port) }, '"web listening"');
      } catch (e) {
        failure = e as Error;
      }
      // The whole output as the assertion's message: chai would cut it short, and the reason is the point.
      const output = failure?.message ?? 'the supervisor started';
      expect(failure?.message, output).to.match(/exited \(1\) before starting/);
      expect(failure?.message, output).to.include('pending migration');
      expect(failure?.message, output).to.include('a web process exited (1) before it listened');
    } finally {
      await dropDatabase(url.toString());
    }
  });
});
