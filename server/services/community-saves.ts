import { copySnapshotMediaToSession, findSavedSessionId, insertSavedSession, lockSavableSnapshot } from '../../db/community-saves.js';
import { holdDurableBlobs } from '../../db/durable-blobs.js';
import type { Knex } from '../../db/knex.js';
import type { AccountRow } from '../../db/types.js';
import { notFound } from '../errors.js';

/**
 * POST /api/community/sessions/:id/save, in one transaction: the caller's private copy of a ready
 * community item, referencing the item's durable blobs (docs/architecture.md §5: a save adds references and moves
 * no bytes). Saving again gives the same session (`reused`), whatever runs at once: the database's
 * unique index decides which insert is the copy.
 *
 * Order matters against an unshare and the blob collector: the snapshot is locked first (its
 * removal waits for this commit), then its blobs are held (the collector skips them), and only then
 * are references written. After COMMIT the copy's references keep the blobs on their own.
 */
export async function saveCommunityItem(knex: Knex, user: AccountRow, snapshotId: number): Promise<{ sessionId: number; reused: boolean }> {
  return knex.transaction(async (trx) => {
    const gone = () => notFound(`Community session ${snapshotId} not found`);
    const locked = await lockSavableSnapshot(trx, snapshotId);
    // Items not (yet) in content-addressed storage would have to be copied: such an item is not ready to save.
    if (!locked || locked.missing > 0) throw gone();
    const sessionId = await insertSavedSession(trx, user.id, locked.snapshot);
    if (sessionId === undefined) {
      const existing = await findSavedSessionId(trx, user.id, snapshotId);
      if (existing === undefined) throw gone();
      return { sessionId: existing, reused: true };
    }
    const held = await holdDurableBlobs(trx, locked.hashes);
    // The snapshot's references keep its blobs while it is locked: a missing one is a broken store.
    if (locked.hashes.some((h) => !held.has(h))) throw new Error(`Community session ${snapshotId} references a durable blob that is gone`);
    await copySnapshotMediaToSession(trx, snapshotId, sessionId);
    return { sessionId, reused: false };
  });
}
