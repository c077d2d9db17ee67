import { createHash } from 'node:crypto';
import { referenceDurableBlobs } from '../db/durable-blobs.js';
import { listLegacySnapshots, moveLegacySnapshotItem, moveLegacySnapshotThumbnail, type LegacySnapshot } from '../db/snapshots.js';
import { snapshotPrefix } from '../workers/processors/snapshots.js';
import { BlobStore } from '../workers/storage/blob-storage.js';
import { storeDurable, type StoredBlob } from '../workers/storage/durable-media.js';
import type { Knex } from '../db/knex.js';
import { parseCli, progress, runScript, scriptContext } from './lib/cli.js';

const HELP = `Usage: npm run media:migrate -- [--dry-run]

Moves community snapshots copied before content addressing (blobs under snapshots/<id>/ in the
snapshots container) to durable blobs (media/sha256/<2 hex>/<hash>.<ext>, docs/architecture.md §5): each copied
item and thumbnail is stored once under its sha256 (nothing uploaded when those bytes are stored
already), its row is pointed at the durable blob, and the snapshot's old blobs are deleted. Safe to
run while the app serves (old URLs answer until their row points elsewhere) and to run again: moved
items are skipped, so an interrupted run resumes.

Options:
  --dry-run   count what would be moved; change nothing
  --help      this help`;

runScript(async () => {
  const args = parseCli(HELP, { 'dry-run': { type: 'boolean' } });
  const ctx = scriptContext('media-migrate');
  try {
    const snapshots = await listLegacySnapshots(ctx.knex);
    const items = snapshots.reduce((n, s) => n + s.items.length + (s.thumbnailBlobName ? 1 : 0), 0);
    if (snapshots.length === 0) {
      console.log('no snapshot in the old layout; nothing to do');
      return 0;
    }
    console.log(`${snapshots.length} snapshot(s) in the old layout, ${items} blob(s) to move`);
    if (args['dry-run']) {
      for (const s of snapshots) console.log(`  would move snapshot ${s.id}: ${s.items.length} item(s)${s.thumbnailBlobName ? ' and its thumbnail' : ''}`);
      console.log('dry run: nothing changed');
      return 0;
    }
    const blobs = BlobStore.fromConnectionString(ctx.config.azureStorageConnectionString, ctx.config.blobContainers, { timeoutMs: ctx.config.bounds.storageMs });
    const bar = progress('moving media', items);
    let failed = 0;
    try {
      for (const s of snapshots) {
        try {
          await migrateSnapshot(ctx.knex, blobs, s, () => bar.tick());
        } catch (e) {
          failed += 1;
          console.error(`snapshot ${s.id}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    } finally {
      bar.stop();
    }
    console.log(`moved ${snapshots.length - failed} snapshot(s)${failed ? `; ${failed} failed (run again to retry them)` : ''}`);
    return failed ? 1 : 0;
  } finally {
    await ctx.close();
  }
});

/** Stores a legacy blob's bytes durably (checked against the recorded sha256, when there is one). */
async function storeLegacy(knex: Knex, blobs: BlobStore, name: string, contentType: string, checksum: string | null): Promise<StoredBlob> {
  const body = await blobs.download(blobs.containers.snapshots, name);
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (checksum && checksum !== sha256) throw new Error(`${name}: its bytes hash to ${sha256}, not the recorded ${checksum}`);
  return storeDurable({ knex, blobs }, { body, sha256, contentType, bytes: body.length });
}

/**
 * One snapshot: the thumbnail first (it may be one of the items' old blobs), then each item, each
 * reference written in a transaction holding its durable blob; then the snapshot's old prefix goes.
 */
async function migrateSnapshot(knex: Knex, blobs: BlobStore, s: LegacySnapshot, tick: () => void): Promise<void> {
  const held = async (stored: StoredBlob, write: (trx: Knex.Transaction) => Promise<void>): Promise<void> =>
    knex.transaction(async (trx) => {
      if (!(await referenceDurableBlobs(trx, [stored])).has(stored.sha256)) throw new Error(`durable blob ${stored.sha256} was collected meanwhile; run again`);
      await write(trx);
    });
  if (s.thumbnailBlobName) {
    const [listed] = await blobs.list(blobs.containers.snapshots, s.thumbnailBlobName);
    const stored = await storeLegacy(knex, blobs, s.thumbnailBlobName, listed?.contentType ?? 'application/octet-stream', null);
    await held(stored, (trx) => moveLegacySnapshotThumbnail(trx, s.id, s.thumbnailBlobName!, stored));
    tick();
  }
  for (const item of s.items) {
    const stored = await storeLegacy(knex, blobs, item.blob_name, item.content_type ?? 'application/octet-stream', item.checksum);
    await held(stored, (trx) => moveLegacySnapshotItem(trx, item.id, item.blob_name, stored));
    tick();
  }
  await blobs.deletePrefix(blobs.containers.snapshots, snapshotPrefix(s.id));
}
