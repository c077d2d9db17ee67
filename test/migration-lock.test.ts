import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { MIGRATIONS_DIR, MIGRATION_LOCK_FILE, compareToLock, lockNewMigrations, migrationFiles, readMigrationLock } from '../db/migration-lock.js';

/** Migrations are append-only: the lock holds what landed (docs/operations.md §1). */
describe('migration lock (db/migrations.lock.json)', () => {
  it('every migration is locked with its content as it landed, in order, and every locked one is still there', () => {
    const files = migrationFiles();
    const locked = readMigrationLock();
    expect(files.length, 'finds the migrations').to.be.greaterThan(20);
    const { changed, missing, unlocked, outOfOrder } = compareToLock(files, locked);
    expect(changed, 'landed migrations edited since: restore them and put the change in a new migration').to.deep.equal([]);
    expect(missing, 'landed migrations removed or renamed: restore them').to.deep.equal([]);
    expect(outOfOrder, 'new migrations that sort before landed ones: give them a later timestamp').to.deep.equal([]);
    expect(unlocked, 'new migrations not in the lock: run `npm run migrate:lock` and commit the lock').to.deep.equal([]);
    expect(locked.map((l) => l.name), 'the lock is in the order the migrations run').to.deep.equal(files.map((f) => f.name));
  });

  describe('on a copy of the migrations', () => {
    let dir: string;
    let lock: string;
    const first = (): string => readMigrationLock(lock)[0]!.name;
    const last = (): string => readMigrationLock(lock).at(-1)!.name;
    const status = () => compareToLock(migrationFiles(dir), readMigrationLock(lock));
    const clean = { changed: [], missing: [], unlocked: [], outOfOrder: [] };

    beforeEach(() => {
      const root = mkdtempSync(path.join(os.tmpdir(), 'showrunner-migration-lock-'));
      dir = path.join(root, 'migrations');
      lock = path.join(root, 'migrations.lock.json');
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      cpSync(MIGRATION_LOCK_FILE, lock);
    });
    afterEach(() => rmSync(path.dirname(dir), { recursive: true, force: true }));

    it('a landed migration edited (even by a comment) is caught, and migrate:lock refuses to re-lock it; line endings alone are no edit', () => {
      const file = path.join(dir, `${first()}.ts`);
      const original = readFileSync(file, 'utf8');
      writeFileSync(file, original.replace(/\n/g, '\r\n'));
      expect(status()).to.deep.equal(clean);
      writeFileSync(file, `${original}// tidied\n`);
      expect(status()).to.deep.equal({ ...clean, changed: [first()] });
      const before = readFileSync(lock, 'utf8');
      expect(() => lockNewMigrations(dir, lock)).to.throw(`${first()} changed after it landed`);
      expect(readFileSync(lock, 'utf8'), 'the lock is left as it was').to.equal(before);
    });

    it('a landed migration removed or renamed is caught', () => {
      const name = last();
      unlinkSync(path.join(dir, `${first()}.ts`));
      renameSync(path.join(dir, `${name}.ts`), path.join(dir, `${name}_v2.ts`));
      expect(status()).to.deep.equal({ ...clean, missing: [first(), name], unlocked: [`${name}_v2`] });
      expect(() => lockNewMigrations(dir, lock)).to.throw('is locked but its file is gone');
    });

    it('a new migration: not locked until migrate:lock appends it; one that sorts before a landed one is refused', () => {
      const name = '29991231000100_add_something';
      writeFileSync(path.join(dir, `${name}.ts`), 'export async function up(): Promise<void> {}\nexport async function down(): Promise<void> {}\n');
      expect(status()).to.deep.equal({ ...clean, unlocked: [name] });
      const locked = readMigrationLock(lock);
      expect(lockNewMigrations(dir, lock)).to.deep.equal([name]);
      expect(readMigrationLock(lock)).to.deep.equal([...locked, ...migrationFiles(dir).filter((f) => f.name === name)]);
      expect(status()).to.deep.equal(clean);
      expect(lockNewMigrations(dir, lock), 'a second run adds nothing').to.deep.equal([]);

      const early = '20000101000100_backdated';
      writeFileSync(path.join(dir, `${early}.ts`), 'export async function up(): Promise<void> {}\n');
      expect(status()).to.deep.equal({ ...clean, unlocked: [early], outOfOrder: [early] });
      expect(() => lockNewMigrations(dir, lock)).to.throw(`${early} sorts before migrations that landed already`);
    });
  });
});
