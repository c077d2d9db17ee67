import { expect } from 'chai';
import { dropDatabase, ensureDatabase } from '../db/database.js';
import { createKnex, type Knex } from '../db/knex.js';
import { migrateLatest, pendingMigrations } from '../db/migrate.js';
import { testDatabaseUrl } from './helpers/database.js';

/** The tables each migration creates; a migration not listed here is still checked to round-trip. */
const TABLES_BY_MIGRATION: Record<string, string[]> = {
  '20261127000100_create_users': ['auth_rate_limits', 'http_sessions', 'users'],
  '20261127000200_create_categories': ['categories'],
  '20261127000300_create_sessions': ['session_media', 'sessions'],
  '20261127000400_create_community_snapshots': ['community_snapshot_media', 'community_snapshots'],
  '20261127000500_create_job_outbox': ['job_outbox'],
  '20261201000400_add_community_likes': ['community_likes'],
  '20261201000500_add_moderation': ['moderation_audit'],
  '20261201000700_add_durable_blobs': ['durable_blobs'],
  '20261201000800_add_share_codes_and_saves': ['share_codes'],
  '20261201001100_add_community_subreddit_names': ['community_subreddit_names'],
  '20261201001200_add_media_sources': ['media_sources'],
  '20261207000100_replace_auth_rate_limits': ['rate_limits'],
};
/** The tables a later migration drops (replaced by another). */
const DROPPED_BY_MIGRATION: Record<string, string[]> = {
  '20261207000100_replace_auth_rate_limits': ['auth_rate_limits'],
};
const DROPPED = Object.values(DROPPED_BY_MIGRATION).flat();
const ALL_TABLES = Object.values(TABLES_BY_MIGRATION).flat().filter((t) => !DROPPED.includes(t)).sort();
const EVER_TABLES = Object.values(TABLES_BY_MIGRATION).flat();

interface Schema {
  tables: string[];
  columns: string[];
  constraints: string[];
  indexes: string[];
  triggers: string[];
  functions: string[];
  sequences: string[];
}

/** Everything a migration can create in the public schema, apart from knex's own bookkeeping. */
async function schemaOf(knex: Knex): Promise<Schema> {
  const rows = async (sql: string): Promise<string[]> => (await knex.raw<{ rows: { v: string }[] }>(sql)).rows.map((r) => r.v).sort();
  const [tables, columns, constraints, indexes, triggers, functions, sequences] = await Promise.all([
    rows(`SELECT tablename AS v FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'knex\\_%'`),
    rows(`SELECT concat_ws(' ', table_name, column_name, data_type, is_nullable, column_default) AS v FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name NOT LIKE 'knex\\_%'`),
    rows(`SELECT concat_ws(' ', t.relname, c.conname, pg_get_constraintdef(c.oid)) AS v FROM pg_constraint c
          JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
          WHERE n.nspname = 'public' AND t.relname NOT LIKE 'knex\\_%'`),
    rows(`SELECT indexdef AS v FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT LIKE 'knex\\_%'`),
    rows(`SELECT concat_ws(' ', c.relname, t.tgname) AS v FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal`),
    rows(`SELECT p.proname AS v FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'`),
    rows(`SELECT c.relname AS v FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'S' AND c.relname NOT LIKE 'knex\\_%'`),
  ]);
  return { tables, columns, constraints, indexes, triggers, functions, sequences };
}

const EMPTY: Schema = { tables: [], columns: [], constraints: [], indexes: [], triggers: [], functions: [], sequences: [] };

describe('migrations', function () {
  this.timeout(60_000);
  let url: string;
  let knex: Knex;

  before(async () => {
    // A scratch database of this process's own, never the shared test database.
    const u = new URL(testDatabaseUrl());
    u.pathname = `${u.pathname}_migrations_${process.pid}`;
    url = u.toString();
    await ensureDatabase(url, { recreate: true });
    knex = createKnex({ databaseUrl: url, poolMax: 1 });
  });

  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  const applied = async (): Promise<string[]> => ((await knex('knex_migrations').orderBy('id').select('name')) as { name: string }[]).map((r) => r.name);

  it('each migration goes up and back down to exactly the schema before it', async () => {
    expect(await schemaOf(knex)).to.deep.equal(EMPTY);
    const [, pending] = (await knex.migrate.list()) as [unknown[], { name: string }[]];
    const files = pending.map((p) => p.name);
    expect(files, 'every known migration is found').to.include.members(Object.keys(TABLES_BY_MIGRATION));

    // Up, one at a time: each creates its tables and nothing of the later ones.
    const after: Schema[] = [EMPTY];
    let created: string[] = [];
    for (const file of files) {
      const [, ran] = (await knex.migrate.up()) as [number, string[]];
      expect(ran).to.deep.equal([file]);
      created.push(...(TABLES_BY_MIGRATION[file] ?? []));
      created = created.filter((t) => !(DROPPED_BY_MIGRATION[file] ?? []).includes(t));
      const schema = await schemaOf(knex);
      expect(schema.tables, `tables after ${file}`).to.include.members(created);
      expect(schema.tables.filter((name) => EVER_TABLES.includes(name)).sort(), `no table of a later migration after ${file}`).to.deep.equal([...created].sort());
      after.push(schema);
    }
    expect(await applied()).to.deep.equal(files);

    // Down, one at a time: each leaves the schema as it was before that migration ran.
    for (let i = files.length - 1; i >= 0; i--) {
      const [, undone] = (await knex.migrate.down()) as [number, string[]];
      expect(undone).to.deep.equal([files[i]]);
      expect(await schemaOf(knex), `schema after undoing ${files[i]}`).to.deep.equal(after[i]);
    }
    expect(await applied()).to.deep.equal([]);
  });

  it('latest, rollback of everything, latest again: the same schema each time up, nothing left down', async () => {
    await knex.migrate.latest();
    const first = await schemaOf(knex);
    expect(first.tables).to.deep.equal(ALL_TABLES);
    expect(first.triggers).to.include('job_outbox job_outbox_notify');

    await knex.migrate.rollback(undefined, true);
    expect(await schemaOf(knex), 'nothing survives a full rollback').to.deep.equal(EMPTY);
    expect(await applied()).to.deep.equal([]);

    // The release command's path: migrations, then the reference data.
    await migrateLatest(knex);
    expect(await schemaOf(knex)).to.deep.equal(first);
    const [, pending] = (await knex.migrate.list()) as [unknown[], unknown[]];
    expect(pending).to.deep.equal([]);
    const defaults = await knex('categories').where({ is_default: true }).select('slug');
    expect(defaults).to.deep.equal([{ slug: 'uncategorized' }]);
    // Running it again is harmless.
    expect(await migrateLatest(knex)).to.deep.equal([]);
    expect(await knex('categories').where({ is_default: true }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
  });

  it('renames an existing "General" default to "Uncategorized" in place: same id, its sessions keep it, one default, re-seeding adds none', async () => {
    await knex.migrate.rollback(undefined, true);
    // A database from before the rename: migrated up to the migration before it, seeded with the old default.
    const [, pending] = (await knex.migrate.list()) as [unknown[], { name: string }[]];
    const renameAt = pending.findIndex((p) => p.name === '20261201000600_rename_default_category');
    expect(renameAt).to.be.greaterThan(0);
    for (let i = 0; i < renameAt; i++) await knex.migrate.up();
    const [old] = (await knex('categories').insert({ slug: 'general', name: 'General', is_default: true }).returning('id')) as { id: number }[];
    await knex('categories').insert({ slug: 'art', name: 'Art' });
    await knex('users').insert({ id: 'user_old', email: 'old@example.com', password_hash: 'x' });
    await knex('sessions').insert({ user_id: 'user_old', title: 'Old', subreddits: ['pics'], category_id: old!.id, category_source: 'default', caption_theme: 'joi' });

    await migrateLatest(knex);
    expect(await knex('categories').where({ is_default: true }).select('id', 'slug', 'name')).to.deep.equal([{ id: old!.id, slug: 'uncategorized', name: 'Uncategorized' }]);
    expect(await knex('sessions').where({ title: 'Old' }).first('category_id')).to.deep.equal({ category_id: old!.id });
    expect(await knex('categories').whereIn('slug', ['general', 'uncategorized']).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
    await migrateLatest(knex);
    expect(await knex('categories').where({ is_default: true }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
  });

  it('a database migrated from the TypeScript source is current for the compiled build, and the other way round', async () => {
    await migrateLatest(knex);
    const names = await applied();
    // As the source (tsx) and the build (dist/) used to record them: with their file extension.
    for (const [i, name] of names.entries()) {
      await knex('knex_migrations').where({ name }).update({ name: `${name}${i % 2 ? '.js' : '.ts'}` });
    }
    expect(await pendingMigrations(knex)).to.deep.equal([]);
    expect(await applied()).to.deep.equal(names);
    expect(await migrateLatest(knex)).to.deep.equal([]);
  });
});
