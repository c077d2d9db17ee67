import { expect } from 'chai';
import { dropDatabase, ensureDatabase } from '../db/database.js';
import { createKnex } from '../db/knex.js';
import { testDatabaseUrl } from './helpers/database.js';

const TABLES = ['users', 'http_sessions', 'auth_rate_limits', 'categories', 'sessions', 'session_media', 'community_snapshots', 'community_snapshot_media', 'job_outbox'];

describe('migrations', function () {
  this.timeout(60_000);

  it('run up, down and up again on an empty database', async () => {
    const url = new URL(testDatabaseUrl());
    url.pathname = `${url.pathname}_migrations_${process.pid}`;
    await ensureDatabase(url.toString(), { recreate: true });
    const knex = createKnex({ databaseUrl: url.toString(), poolMax: 1 });
    const tables = async (): Promise<string[]> =>
      (await knex.raw<{ rows: { tablename: string }[] }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'knex_%'`)).rows
        .map((r) => r.tablename)
        .sort();
    try {
      await knex.migrate.latest();
      expect(await tables()).to.deep.equal([...TABLES].sort());
      await knex.migrate.rollback(undefined, true);
      expect(await tables()).to.deep.equal([]);
      await knex.migrate.latest();
      expect(await tables()).to.deep.equal([...TABLES].sort());
      const [, pending] = (await knex.migrate.list()) as [unknown[], unknown[]];
      expect(pending).to.have.length(0);
    } finally {
      await knex.destroy();
      await dropDatabase(url.toString());
    }
  });
});
