import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { Semaphore } from '../semaphore.js';

/**
 * Password hashes: scrypt, stored as `scrypt$N$r$p$salt$hash` (base64), so every hash carries its
 * own parameters and a stronger setting never breaks an older hash: a login with an older one
 * re-hashes it ({@link verifyPassword}'s `needsRehash`).
 */

// r and p as OWASP's Password Storage Cheat Sheet gives them (N = 2^17, r = 8, p = 1); N is the
// configured cost (`PASSWORD_SCRYPT_COST`, 17 by default: about 128 MiB per hash).
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
const KEY_LENGTH = 64;

/** Parameters a stored hash may name: above them a hash is refused as malformed rather than given gigabytes. */
const MAX_COST = 20;

/** scrypt's parameters. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** The parameters new hashes get at `cost` (log2 N, `PASSWORD_SCRYPT_COST`). */
export function scryptParams(cost: number): ScryptParams {
  return { N: 2 ** cost, r: BLOCK_SIZE, p: PARALLELISM };
}

// One hash holds 128·N·r bytes for its whole run (128 MiB at the default). libuv's threadpool
// (4 threads unless UV_THREADPOOL_SIZE says otherwise) already caps running hashes at 4, which is
// 512 MiB; this caps them at 2 per process (256 MiB), and leaves the threadpool's other threads to
// file, DNS and zlib work, which a burst of logins would otherwise queue behind. Hashes are CPU
// bound: more at once than the cores finish no sooner.
const HASHES_AT_ONCE = 2;
const hashing = new Semaphore(HASHES_AT_ONCE);

async function derive(password: string, salt: Buffer, { N, r, p }: ScryptParams): Promise<Buffer> {
  const release = await hashing.acquire();
  try {
    return await new Promise((resolve, reject) => {
      // maxmem above scrypt's 128·N·r (OpenSSL adds a little for p), which Node refuses to exceed.
      scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r * p }, (err, key) => (err ? reject(err) : resolve(key)));
    });
  } finally {
    release();
  }
}

/** A new hash of `password` at `cost` (log2 N). */
export async function hashPassword(password: string, cost: number): Promise<string> {
  const params = scryptParams(cost);
  const salt = randomBytes(16);
  const key = await derive(password, salt, params);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** The parameters a stored hash names; undefined when it is malformed or asks for more than {@link MAX_COST}. */
function parseHash(stored: string): { params: ScryptParams; salt: Buffer; hash: Buffer } | undefined {
  const [scheme, n, r, p, salt, hash, ...rest] = stored.split('$');
  if (scheme !== 'scrypt' || rest.length > 0 || !salt || !hash) return undefined;
  const [N, R, P] = [Number(n), Number(r), Number(p)];
  const powerOfTwo = Number.isInteger(N) && N > 1 && N <= 2 ** MAX_COST && (N & (N - 1)) === 0;
  if (!powerOfTwo || !Number.isInteger(R) || R < 1 || R > 32 || !Number.isInteger(P) || P < 1 || P > 16) return undefined;
  return { params: { N, r: R, p: P }, salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
}

/** What {@link verifyPassword} found. */
export interface PasswordCheck {
  ok: boolean;
  /** The password matched a hash weaker than new hashes get at the cost asked for: hash it again now. */
  needsRehash: boolean;
}

/**
 * Checks `password` against `stored` in constant time; a malformed stored hash verifies as false.
 * `cost` is the current setting, against which the stored hash is judged for {@link PasswordCheck.needsRehash}.
 */
export async function verifyPassword(password: string, stored: string, cost: number): Promise<PasswordCheck> {
  const parsed = parseHash(stored);
  if (!parsed) return { ok: false, needsRehash: false };
  const key = await derive(password, parsed.salt, parsed.params);
  const ok = key.length === parsed.hash.length && timingSafeEqual(key, parsed.hash);
  const current = scryptParams(cost);
  const weaker = parsed.params.N < current.N || parsed.params.r < current.r || parsed.params.p < current.p;
  return { ok, needsRehash: ok && weaker };
}

const dummies = new Map<number, Promise<string>>();

/**
 * A hash of a random password at `cost`, compared against when the email is unknown: the same
 * parameters as a real account's, so the time taken does not tell whether the email exists.
 */
export function dummyPasswordHash(cost: number): Promise<string> {
  let dummy = dummies.get(cost);
  if (!dummy) dummies.set(cost, (dummy = hashPassword(randomBytes(16).toString('hex'), cost)));
  return dummy;
}
