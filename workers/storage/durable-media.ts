import { claimDurableBlobs, type StoredBlobRecord } from '../../db/durable-blobs.js';
import type { DurableBlobRow } from '../../db/types.js';
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
 * memory (`body`, or the `chunks` a download came in) or in a local file (`file`, uploaded as a stream).
 */
export type DurableContent = { sha256: string; contentType: string; bytes: number } & ({ body: Buffer } | { chunks: readonly Buffer[] } | { file: string });

/** Stored bytes, ready to be referenced in a transaction that holds them ({@link referenceDurableBlobs}). */
export interface StoredBlob extends StoredBlobRecord {
  url: string;
}

/** A blob stored already, as a copy that reuses it (uploading nothing) references it. */
export function reusedBlob(blobs: BlobStore, blob: Omit<StoredBlobRecord, 'uploaded'>): StoredBlob {
  return { ...blob, url: blobs.url(blobs.containers.snapshots, blob.blobName), uploaded: 0 };
}

/** The recorded blobs among `hashes` (marks cleared): {@link claimDurableBlobs}, or a batching stand-in for it. */
export type ClaimBlobs = (sha256: string) => Promise<DurableBlobRow | undefined>;

/** Runs an upload, and only an upload: where a caller bounds how many run at once (a copy's upload stage). */
export type UploadGate = <T>(upload: () => Promise<T>) => Promise<T>;

/**
 * Stores the content once under its hash (docs/architecture.md §5): when `durable_blobs` has the hash, nothing is
 * uploaded; else it is uploaded (`uploaded` > 0). A recorded row means its blob is there: the
 * collector deletes rows before blobs, and never a blob written again after it was marked, so
 * there is no need to ask the storage. The upload runs through `gate`, so a caller that bounds
 * uploads holds a permit for the upload alone, not for the claim. The caller records and
 * references it in one transaction ({@link referenceDurableBlobs}), which can find a reused blob
 * collected since (only after a whole grace period unreferenced): it then stores it again.
 */
export async function storeDurable(
  deps: { knex: Knex; blobs: BlobStore },
  content: DurableContent,
  claim: ClaimBlobs = async (sha256) => (await claimDurableBlobs(deps.knex, [sha256])).get(sha256),
  gate: UploadGate = (upload) => upload(),
): Promise<StoredBlob> {
  const container = deps.blobs.containers.snapshots;
  const known = await claim(content.sha256);
  if (known) return reusedBlob(deps.blobs, { sha256: content.sha256, blobName: known.blob_name, contentType: known.content_type, bytes: content.bytes });
  const blobName = durableBlobName(content.sha256, content.contentType);
  const { url } = await gate(() =>
    'file' in content
      ? deps.blobs.uploadFile(container, blobName, content.file, content.contentType)
      : deps.blobs.upload(container, blobName, 'body' in content ? content.body : content.chunks, content.contentType),
  );
  return { sha256: content.sha256, blobName, contentType: content.contentType, bytes: content.bytes, url, uploaded: content.bytes };
}
