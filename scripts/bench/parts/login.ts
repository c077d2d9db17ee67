import { randomBytes, scrypt } from 'node:crypto';
import { hashPassword, scryptParams } from '../../../db/password.js';
import { peakRssMb, type Bench } from '../harness.js';
import type { BenchPart } from '../part.js';
import { quantile, type Figure } from '../stats.js';

/**
 * What a login costs at the configured scrypt cost (`PASSWORD_SCRYPT_COST`, 2^17 by default): p50
 * and p99 of `POST /api/auth/login` over HTTP, one at a time, next to the raw `crypto.scrypt` of one
 * hash with the same parameters in this process (the floor: a login is one hash plus a few queries);
 * the first login with an older hash (2^14, re-hashed in the same request: two hashes); and logins
 * 8 at once, which the web's cap of 2 hashes per process queues, with the web's peak RSS after them.
 */
async function loginFigures(bench: Bench, options: { quick: boolean; reps: number; log: (line: string) => void }): Promise<Figure[]> {
  const cost = bench.config.passwordScryptCost;
  const samples = options.quick ? 10 : 30;
  const { email, password, id } = bench.user;
  const login = async (): Promise<number> => {
    const started = performance.now();
    const res = await fetch(`${bench.webUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`bench login answered ${res.status}`);
    return performance.now() - started;
  };
  const { N, r, p } = scryptParams(cost);
  const salt = randomBytes(16);
  const rawHash = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      scrypt(password, salt, 64, { N, r, p, maxmem: 256 * N * r * p }, (err) => (err ? reject(err) : resolve(performance.now() - started)));
    });
  const current = (await bench.knex('users').where({ id }).first('password_hash')) as { password_hash: string };
  const older = await hashPassword(password, 14);

  const ours = { p50: [] as number[], p99: [] as number[] };
  const raw = { p50: [] as number[], p99: [] as number[] };
  const rehash: number[] = [];
  const parallel: number[] = [];
  await login();
  await rawHash();
  for (let rep = 0; rep < options.reps; rep++) {
    options.log(`login repetition ${rep + 1}/${options.reps} (${samples} logins at N = 2^${cost}, then as many raw hashes)`);
    const logins: number[] = [];
    const hashes: number[] = [];
    for (let i = 0; i < samples; i++) logins.push(await login());
    for (let i = 0; i < samples; i++) hashes.push(await rawHash());
    ours.p50.push(quantile(logins, 0.5)), ours.p99.push(quantile(logins, 0.99));
    raw.p50.push(quantile(hashes, 0.5)), raw.p99.push(quantile(hashes, 0.99));

    const upgraded: number[] = [];
    for (let i = 0; i < Math.ceil(samples / 5); i++) {
      await bench.knex('users').where({ id }).update({ password_hash: older });
      upgraded.push(await login());
    }
    rehash.push(quantile(upgraded, 0.5));
    parallel.push(quantile(await Promise.all(Array.from({ length: 8 }, login)), 0.99));
  }
  // The bench's other parts log in as this user too: leave its hash as it was.
  await bench.knex('users').where({ id }).update({ password_hash: current.password_hash });
  const webRss = Math.max(...peakRssMb(bench.web.child.pid));

  const baseline = (values: number[]) => ({ name: `crypto.scrypt N = 2^${cost}`, values });
  return [
    { name: `login p50, N = 2^${cost}`, unit: 'ms', values: ours.p50, baseline: baseline(raw.p50), better: 'lower' },
    { name: `login p99, N = 2^${cost}`, unit: 'ms', values: ours.p99, baseline: baseline(raw.p99), better: 'lower' },
    { name: 'login p50, 2^14 hash re-hashed', unit: 'ms', values: rehash, baseline: baseline(raw.p50), better: 'lower' },
    { name: 'login p99, 8 at once', unit: 'ms', values: parallel, baseline: baseline(raw.p99), better: 'lower' },
    { name: 'web peak RSS after logins', unit: 'MB', values: [webRss], better: 'lower' },
  ];
}

export const loginPart: BenchPart = {
  name: 'login',
  measures: 'POST /api/auth/login p50/p99 at PASSWORD_SCRYPT_COST (2^17), one at a time; a login re-hashing a 2^14 hash; 8 at once; the web\'s peak RSS after them',
  baseline: 'crypto.scrypt of one hash with the same parameters, in the bench process',
  // Three repetitions at most: a login is a 128 MiB hash of about 0.4 s, and 30 of them make one repetition.
  run: async (ctx) => ({ figures: await loginFigures(ctx.bench, { ...ctx, reps: Math.min(ctx.reps, 3) }) }),
};
