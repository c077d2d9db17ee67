import type { Knex } from '../../db/knex.js';

/** A row lock a test holds, to line requests up behind it and let them go when it chooses. */
export interface HeldRowLock {
  /** How many backends wait on it: directly, or queued behind another waiter. */
  queued(): Promise<number>;
  /** Commits the holding transaction: the waiters go on, in the order they queued. */
  release(): Promise<void>;
}

/** Locks one row (`FOR UPDATE`) in a transaction of its own, held until `release()`. */
export async function holdRowLock(knex: Knex, table: string, id: number): Promise<HeldRowLock> {
  const trx = await knex.transaction();
  let pid: number;
  try {
    await trx.raw('SELECT 1 FROM ?? WHERE id = ? FOR UPDATE', [table, id]);
    pid = ((await trx.raw('SELECT pg_backend_pid() AS pid')) as { rows: { pid: number }[] }).rows[0]!.pid;
  } catch (e) {
    await trx.rollback();
    throw e;
  }
  return {
    async queued() {
      const { rows } = (await trx.raw(
        `WITH RECURSIVE behind(pid) AS (
           SELECT pid FROM pg_stat_activity WHERE ?::int = ANY(pg_blocking_pids(pid))
           UNION SELECT a.pid FROM pg_stat_activity a JOIN behind b ON b.pid = ANY(pg_blocking_pids(a.pid)))
         SELECT count(*)::int AS n FROM behind`,
        [pid],
      )) as { rows: { n: number }[] };
      return rows[0]!.n;
    },
    async release() {
      if (!trx.isCompleted()) await trx.commit();
    },
  };
}
