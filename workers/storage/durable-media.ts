import { claimDurableBlob, insertDurableBlob } from '../../db/durable-blobs.js';
import type { Knex } from '../../db/knex.js';
import type { BlobStore } from './blob-storage.js';

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
};

/** The file extension of a media content type (`bin` when unknown). */
export function extensionOf(contentType: string): string {
  return EXTENSIONS[contentType.split(';')[0]!.trim().toLowerCase()] ?? 'bin';
}

/** `media/sha256/<first 2 hex>/<hash>.<ext>`: the one name of these bytes in the snapshots container. */
export function durableBlobName(sha256: string, contentType: string): string {
  return `media/sha256/${sha256.slice(0, 2)}/${sha256}.${extensionOf(contentType)}`;
}

/**
 * Bytes to store durably, with their sha256 already computed (and checked against the limits): in
 * memory (`body`) or in a local file (`file`, uploaded as a stream).
 */
export type DurableContent = { sha256: string; contentType: string; bytes: number } & ({ body: Buffer } | { file: string });

export interface StoredBlob {
  sha256: string;
  blobName: string;
  url: string;
  /** Bytes this call uploaded: 0 when the blob was stored already. */
  uploaded: number;
}

/**
 * Stores the content once under its hash (DESIGN §3): when `durable_blobs` has the hash and the blob
 * is there, nothing is uploaded; else it is uploaded and recorded. The caller then references it in
 * a transaction that holds the row ({@link holdDurableBlobs}), which can find it collected since
 * (only after a whole grace period unreferenced): it then stores it again.
 */
export async function storeDurable(deps: { knex: Knex; blobs: BlobStore }, content: DurableContent): Promise<StoredBlob> {
  const container = deps.blobs.containers.snapshots;
  const known = await claimDurableBlob(deps.knex, content.sha256);
  if (known && (await deps.blobs.exists(container, known.blob_name))) {
    return { sha256: content.sha256, blobName: known.blob_name, url: deps.blobs.url(container, known.blob_name), uploaded: 0 };
  }
  const blobName = known?.blob_name ?? durableBlobName(content.sha256, content.contentType);
  const contentType = known?.content_type ?? content.contentType;
  const { url } =
    'file' in content
      ? await deps.blobs.uploadFile(container, blobName, content.file, contentType)
      : await deps.blobs.upload(container, blobName, content.body, contentType);
  await insertDurableBlob(deps.knex, { sha256: content.sha256, blob_name: blobName, content_type: content.contentType, bytes: content.bytes });
  return { sha256: content.sha256, blobName, url, uploaded: content.bytes };
}
