import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import sharp from 'sharp';
import { waitFor } from './helpers/wait.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The README's "Try it" commands, one string per command, and the answer it documents for the last. */
function readmeExample(): { commands: string[]; answer: Record<string, unknown> } {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const at = readme.indexOf('Try it');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))![1]!;
  const answer = /```json\n([\s\S]*?)```/.exec(readme.slice(at))![1]!;
  return { commands: block.replace(/\\\n\s*/g, '').trim().split('\n'), answer: JSON.parse(answer) as Record<string, unknown> };
}

/** The network namespace of a process (`net:[inode]`), or undefined once it has gone. */
const netOf = (pid: number | string): string | undefined => {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
};

/** Every process in the namespace `ns`, with its command line. */
function processesIn(ns: string): { pid: number; ppid: number; cmd: string }[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && netOf(p) === ns)
    .map((p) => {
      let cmd = '';
      let ppid = 0;
      try {
        cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
        // The field after the state, past the command name in parentheses (which may hold spaces).
        ppid = Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      } catch {
        // Gone between the reads.
      }
      return { pid: Number(p), ppid, cmd };
    })
    .filter((p) => p.cmd !== '');
}

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | string>;
}

describe('npm run dev with Node alone: embedded PostgreSQL, jobs in PostgreSQL, Azurite (a network namespace with loopback only)', function () {
  this.timeout(240_000);
  let holder: ChildProcess | undefined;
  let fixture: ChildProcess | undefined;
  let fixtureUrl = '';
  let ns = '';
  let dir = '';
  const runs: Run[] = [];

  /** Runs `command` inside the namespace (nsenter), in the test's folder. */
  const inNs = (command: string[], options: { detached?: boolean; env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess =>
    spawn('nsenter', ['-t', String(holder!.pid), '-n', ...command], { cwd: options.cwd ?? dir, env: options.env ?? process.env, detached: options.detached ?? false, stdio: ['pipe', 'pipe', 'pipe'] });

  /** A shell command inside the namespace; resolves with its stdout, rejects when it fails. */
  async function sh(command: string): Promise<string> {
    const child = inNs(['sh', '-c', command]);
    child.stdin!.end();
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`${command} failed (${code}): ${err}`);
    return out;
  }

  const json = async (command: string): Promise<Record<string, unknown>> => JSON.parse(await sh(command)) as Record<string, unknown>;

  /** `npm run dev` as a new user runs it: none of the test's services named, in a process group of its own. */
  async function startDev(): Promise<Run> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ['DATABASE_URL', 'TEST_DATABASE_URL', 'REDIS_URL', 'QUEUE_BACKEND', 'AZURE_STORAGE_CONNECTION_STRING', 'NODE_ENV', 'PORT']) delete env[name];
    Object.assign(env, {
      LOG_PRETTY: 'false',
      DEV_POSTGRES_LOCATION: path.join(dir, 'postgres'),
      DEV_AZURITE_LOCATION: path.join(dir, 'azurite'),
      // The local test source instead of Reddit (on loopback, so private addresses are allowed).
      REDDIT_BASE_URL: fixtureUrl,
      MEDIA_ALLOW_PRIVATE_HOSTS: 'true',
    });
    const child = inNs(['npm', 'run', 'dev'], { detached: true, env, cwd: root });
    child.stdin!.end();
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    const run = { child, output: () => output, exited };
    runs.push(run);
    await waitFor('web and worker to start', () => (output.includes('"worker started"') && output.includes('"web listening"')) || child.exitCode !== null, { timeoutMs: 120_000 });
    if (child.exitCode !== null) throw new Error(`npm run dev exited (${child.exitCode}):\n${output.slice(-3000)}`);
    return run;
  }

  /** Only the namespace's holder and the fixture server are left in it. */
  async function expectNothingLeft(): Promise<void> {
    // The fixture server's own children count as the test's: its tsx may start an esbuild service.
    const ours = (p: { pid: number; ppid: number }): boolean => [holder!.pid, fixture!.pid].some((pid) => p.pid === pid || p.ppid === pid);
    await waitFor('every process dev started to end', () => processesIn(ns).every(ours), { timeoutMs: 60_000 }).catch(() => {
      throw new Error(`left running: ${JSON.stringify(processesIn(ns).filter((p) => !ours(p)))}`);
    });
  }

  /**
   * One graceful stop: web and worker each say they shut down cleanly, once; nothing was forced, dev
   * reports nothing unclean, and nothing is left in the namespace. (npm itself, signalled with its
   * group, ends by the signal: its exit says nothing about dev's.)
   */
  async function expectOneGracefulStop(run: Run): Promise<void> {
    await run.exited;
    await expectNothingLeft();
    const output = run.output();
    for (const name of ['web', 'worker']) {
      expect(output.split('\n').filter((l) => l.includes(`"name":"${name}"`) && l.includes('"shut down cleanly"')), `${name}: ${output.slice(-3000)}`).to.have.length(1);
    }
    expect(output).to.not.match(/forcing|did not stop cleanly/);
  }

  before(async function () {
    if (process.getuid?.() !== 0 || spawnSync('unshare', ['--version']).status !== 0) {
      throw new Error('this test needs root and unshare(1) (util-linux) to make a network namespace with loopback only');
    }
    // The embedded PostgreSQL runs as the OS user postgres: it must reach its data directory.
    dir = mkdtempSync(path.join(os.tmpdir(), 'showrunner-dev-embedded-'));
    chmodSync(dir, 0o755);
    holder = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && echo up && exec sleep 100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(holder.stdout!, 'data');
    ns = netOf(holder.pid!)!;
    expect(ns, 'a network namespace of its own').to.not.equal(netOf(process.pid));
    fixture = inNs([process.execPath, '--import', 'tsx', path.join(root, 'test/helpers/ns-fixture.ts'), 'earthporn,pics'], { cwd: root });
    let out = '';
    fixture.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    fixtureUrl = await waitFor('the fixture server', () => /fixture (\S+)/.exec(out)?.[1], { timeoutMs: 30_000 });
  });

  after(async () => {
    for (const run of runs) {
      try {
        process.kill(-run.child.pid!, 'SIGKILL');
      } catch {
        // Already ended: the usual case.
      }
    }
    fixture?.stdin?.end();
    fixture?.kill('SIGTERM');
    // Whatever is left in the namespace (a failed test's PostgreSQL) goes with it.
    if (ns) for (const p of processesIn(ns)) if (p.pid !== holder?.pid) process.kill(p.pid, 'SIGKILL');
    holder?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("starts with nothing but Node; the README's example answers as documented; `thumbnail: \"\"` stores a new thumbnail; one SIGTERM stops everything", async () => {
    const passwordFiles = (): string[] => readdirSync(os.tmpdir()).filter((f) => f.startsWith('pg-password-'));
    const before = passwordFiles();
    const run = await startDev();
    const output = run.output();
    expect(output).to.match(/started an embedded PostgreSQL 18 at postgres:\/\/postgres@127\.0\.0\.1:\d+\/showrunner/);
    expect(output).to.include('the jobs go to PostgreSQL (QUEUE_BACKEND=postgres)');
    expect(output).to.include('starting Azurite');

    const { commands, answer } = readmeExample();
    expect(commands).to.have.length(3);
    let last: Record<string, unknown> = {};
    for (const command of commands) last = JSON.parse(await sh(command)) as Record<string, unknown>;
    for (const [key, value] of Object.entries(answer)) expect(last[key], key).to.deep.equal(value);

    // The session's subreddits were set: media sync, then a first thumbnail, from the local source.
    const get = 'curl -s -b cookies.txt http://localhost:3000/api/sessions/1';
    const first = await waitFor('the first thumbnail', async () => ((await json(get)).session as { thumbnail: string | null }).thumbnail, { timeoutMs: 60_000 });
    const cleared = await json(`curl -s -b cookies.txt -X PATCH -H 'Content-Type: application/json' -d '{"thumbnail": ""}' http://localhost:3000/api/sessions/1`);
    expect(cleared.thumbnail).to.equal(null);
    const second = await waitFor('the regenerated thumbnail', async () => {
      const url = ((await json(get)).session as { thumbnail: string | null }).thumbnail;
      return url && url !== first ? url : undefined;
    }, { timeoutMs: 60_000 });
    await sh(`curl -s -f -o thumb.webp '${second}'`);
    expect(await sharp(path.join(dir, 'thumb.webp')).metadata()).to.include({ format: 'webp', width: 640, height: 360 });

    process.kill(-run.child.pid!, 'SIGTERM');
    await expectOneGracefulStop(run);
    expect(passwordFiles(), 'no password file left in the temporary directory').to.deep.equal(before);
  });

  it("a second `npm run dev` still has the first run's login and session; killed outright, the next run stops the PostgreSQL it left", async () => {
    const second = await startDev();
    const kept = await json('curl -s -b cookies.txt http://localhost:3000/api/sessions/1');
    expect((kept.session as { title: string }).title).to.equal('Updated Session Title');

    // SIGKILL to dev's group: web and worker notice and stop; the PostgreSQL, in a group of its own, stays.
    const pg = /embedded PostgreSQL 18 at postgres:\/\/postgres@127\.0\.0\.1:(\d+)/.exec(second.output())![1];
    process.kill(-second.child.pid!, 'SIGKILL');
    const others = (): { pid: number; cmd: string }[] =>
      processesIn(ns).filter((p) => p.ppid !== fixture!.pid && !/sleep|ns-fixture|native\/bin\/postgres|^postgres: /.test(p.cmd));
    await waitFor('only the orphaned PostgreSQL to be left', () => others().length === 0, { timeoutMs: 60_000 }).catch(() => {
      throw new Error(`still running: ${JSON.stringify(others())}`);
    });
    const orphan = Number(readFileSync(path.join(dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(existsSync(`/proc/${orphan}`), `the server of port ${pg} outlived dev`).to.equal(true);

    const third = await startDev();
    expect(third.output()).to.include(`stopped the embedded PostgreSQL (pid ${orphan}) a previous run left running`);
    expect((await json('curl -s -b cookies.txt http://localhost:3000/api/sessions/1')).session).to.include({ title: 'Updated Session Title' });
    process.kill(-third.child.pid!, 'SIGTERM');
    await expectOneGracefulStop(third);
  });
});
