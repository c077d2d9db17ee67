import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Migrations are append-only: once one has landed, databases have run it, so editing it changes
 * nothing where it ran and something where it has not. `db/migrations.lock.json` records each
 * landed migration's name and content hash (docs/operations.md §1); `npm run migrate:lock` appends
 * new ones, and test/migration-lock.test.ts fails when a locked one changes or goes.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
export const MIGRATIONS_DIR = path.join(here, 'migrations');
export const MIGRATION_LOCK_FILE = path.join(here, 'migrations.lock.json');

export interface LockedMigration {
  /** As knex records it: the file name without its extension. */
  name: string;
  /** sha256 (hex) of the file's text, line endings as LF, so a CRLF checkout hashes the same. */
  sha256: string;
}

interface LockFile {
  note: string;
  migrations: LockedMigration[];
}

const NOTE = 'Append-only: one entry per landed migration, in order. `npm run migrate:lock` adds new ones; a landed migration is never edited (docs/operations.md §1).';

export function hashMigration(text: string): string {
  return createHash('sha256').update(text.replace(/\r\n/g, '\n')).digest('hex');
}

/** The migration sources in `dir` (TypeScript, as the repository holds them), by name. */
export function migrationFiles(dir = MIGRATIONS_DIR): LockedMigration[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .sort()
    .map((f) => ({ name: f.slice(0, -'.ts'.length), sha256: hashMigration(readFileSync(path.join(dir, f), 'utf8')) }));
}

export function readMigrationLock(file = MIGRATION_LOCK_FILE): LockedMigration[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as LockFile).migrations;
}

/** How the migration files differ from the lock; all empty when they agree. */
export interface LockComparison {
  /** Locked, and their content is no longer what landed. */
  changed: string[];
  /** Locked, and no file has the name any more (removed or renamed). */
  missing: string[];
  /** Files not in the lock yet: new migrations, for `npm run migrate:lock`. */
  unlocked: string[];
  /** Unlocked files that sort before the last locked one: they would run out of order where the others ran. */
  outOfOrder: string[];
}

export function compareToLock(files: readonly LockedMigration[], locked: readonly LockedMigration[]): LockComparison {
  const current = new Map(files.map((f) => [f.name, f.sha256]));
  const known = new Set(locked.map((l) => l.name));
  const last = locked.map((l) => l.name).sort().at(-1) ?? '';
  const unlocked = files.filter((f) => !known.has(f.name)).map((f) => f.name);
  return {
    changed: locked.filter((l) => current.has(l.name) && current.get(l.name) !== l.sha256).map((l) => l.name),
    missing: locked.filter((l) => !current.has(l.name)).map((l) => l.name),
    unlocked,
    outOfOrder: unlocked.filter((name) => name < last),
  };
}

/**
 * Appends the new migrations in `dir` to the lock and returns their names. Refuses, changing
 * nothing, when a locked migration changed or went, or a new one sorts before a locked one: the
 * lock is never rewritten to fit an edited migration.
 */
export function lockNewMigrations(dir = MIGRATIONS_DIR, file = MIGRATION_LOCK_FILE): string[] {
  const locked = readMigrationLock(file);
  const files = migrationFiles(dir);
  const { changed, missing, unlocked, outOfOrder } = compareToLock(files, locked);
  const problems = [
    ...changed.map((n) => `${n} changed after it landed: put the change in a new migration and restore this one`),
    ...missing.map((n) => `${n} is locked but its file is gone (removed or renamed): restore it`),
    ...outOfOrder.map((n) => `${n} sorts before migrations that landed already: give it a later timestamp`),
  ];
  if (problems.length > 0) throw new Error(problems.join('\n'));
  const added = files.filter((f) => unlocked.includes(f.name));
  if (added.length > 0) writeFileSync(file, `${JSON.stringify({ note: NOTE, migrations: [...locked, ...added] } satisfies LockFile, null, 2)}\n`);
  return added.map((f) => f.name);
}
