import { expect } from 'chai';
import type { JobStack } from './job-stack.js';

/**
 * A ready snapshot's media and thumbnail as durable, content-addressed blobs: each item references a
 * hash that `durable_blobs` records and storage holds under `media/sha256/<2 hex>/<hash>.<ext>`, and
 * nothing is left under a per-snapshot prefix. Returns the distinct blob names the snapshot uses.
 */
export async function expectDurableSnapshotBlobs(
  stack: Pick<JobStack, 'knex' | 'blobs' | 'config'>,
  snapshot: { id: number; thumbnail_blob_name: string | null },
  label = `snapshot ${snapshot.id}`,
): Promise<string[]> {
  const container = stack.config.blobContainers.snapshots;
  const media = await stack.knex('community_snapshot_media').where({ snapshot_id: snapshot.id }).orderBy('order');
  const names = new Set<string>();
  for (const item of media) {
    const hash = String(item.blob_sha256);
    expect(hash, `${label}, item ${item.order}: a content hash`).to.match(/^[0-9a-f]{64}$/);
    expect(item.blob_name, `${label}, item ${item.order}`).to.match(new RegExp(`^media/sha256/${hash.slice(0, 2)}/${hash}\\.[a-z0-9]+$`));
    names.add(item.blob_name as string);
  }
  if (snapshot.thumbnail_blob_name) names.add(snapshot.thumbnail_blob_name);
  const recorded = await stack.knex('durable_blobs').whereIn('blob_name', [...names]).pluck('blob_name');
  expect([...recorded].sort(), `${label}: every blob recorded in durable_blobs`).to.deep.equal([...names].sort());
  for (const name of names) {
    expect((await stack.blobs.list(container, name)).map((b) => b.name), `${label}: ${name} stored`).to.include(name);
  }
  expect(await stack.blobs.list(container, `snapshots/${snapshot.id}/`), `${label}: nothing under a per-snapshot prefix`).to.deep.equal([]);
  return [...names].sort();
}
