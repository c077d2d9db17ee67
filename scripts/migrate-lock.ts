import path from 'node:path';
import { MIGRATION_LOCK_FILE, lockNewMigrations } from '../db/migration-lock.js';
import { parseCli, runScript } from './lib/cli.js';

const HELP = `Usage: npm run migrate:lock

Adds each new migration in db/migrations to db/migrations.lock.json (its name and content hash).
Run it once a new migration is written, and commit the lock with it. Refuses, changing nothing, when a
migration that landed was edited, removed or renamed, or a new one sorts before one that landed:
migrations are append-only (docs/operations.md §1).
  --help   this help`;

runScript(async () => {
  parseCli(HELP, {});
  const added = lockNewMigrations();
  console.log(added.length > 0 ? `locked ${added.length} new migration(s) in ${path.relative(process.cwd(), MIGRATION_LOCK_FILE)}: ${added.join(', ')}` : 'every migration is locked already');
});
