/**
 * Which thumbnail URLs may point at our own storage, and how each is read: the one rule the API
 * applies when a user sets a thumbnail and the snapshot job applies when it copies one.
 *
 * The rule: on our storage's origin (the blob endpoint, whatever the container), a thumbnail URL is
 * accepted only when it is, character for character, the URL our storage gives a blob our own jobs
 * write: a generated thumbnail (`<thumbnails container>/thumbnails/sessions/<id>/<generation>.webp`)
 * or a durable media blob (`<snapshots container>/media/sha256/<2 hex>/<sha256>.<ext>`). Any other
 * spelling on that origin (dot segments, `%2e`, `%2f`, `%5c`, backslashes, double encoding, a
 * query, another container or account) is refused. Only a generated thumbnail is read with the
 * account key; every other URL, durable media included, is downloaded anonymously through
 * safe-fetch like any external URL, with its size, type and address checks.
 */

import { BlobStore } from './blob-storage.js';

/** Deterministic, so a rerun of the same generation overwrites instead of adding a blob. */
export function thumbnailBlobName(sessionId: number, generation: number): string {
  return `thumbnails/sessions/${sessionId}/${generation}.webp`;
}

// Whole numbers as the job writes them (no sign, no leading zero, no encoding).
const GENERATED = /^thumbnails\/sessions\/(?:0|[1-9][0-9]{0,15})\/(?:0|[1-9][0-9]{0,15})\.webp$/;
const DURABLE = /^media\/sha256\/([0-9a-f]{2})\/([0-9a-f]{64})\.(?:jpg|png|gif|webp|mp4|webm|bin)$/;

/** What to do with a thumbnail URL (see the module's rule). */
export type ThumbnailUrlVerdict =
  /** A thumbnail the thumbnail job wrote: read from the thumbnails container with the account key. */
  | { kind: 'generated'; blobName: string }
  /** Anything else acceptable: downloaded through safe-fetch. */
  | { kind: 'download' }
  /** On our storage but not a blob our jobs write, in its canonical spelling. */
  | { kind: 'refused'; reason: string };

/** The containers' URLs as the storage spells them, each with a trailing slash (`BlobStore.url(container, '')`). */
export interface StorageContainerUrls {
  thumbnails: string;
  snapshots: string;
}

/** The thumbnail URL rule for one storage account (see the module's comment). */
export class ThumbnailUrlPolicy {
  private readonly origin: string;

  constructor(private readonly containers: StorageContainerUrls) {
    this.origin = new URL(containers.thumbnails).origin;
  }

  /** The rule for the store's account and containers. */
  static of(blobs: BlobStore): ThumbnailUrlPolicy {
    return new ThumbnailUrlPolicy({ thumbnails: blobs.url(blobs.containers.thumbnails, ''), snapshots: blobs.url(blobs.containers.snapshots, '') });
  }

  /** The rule for the account and containers of the configuration (`AZURE_STORAGE_CONNECTION_STRING`, `BLOB_CONTAINER_*`); no request is made. */
  static forStorage(connectionString: string, containers: { thumbnails: string; snapshots: string }): ThumbnailUrlPolicy {
    return new ThumbnailUrlPolicy({
      thumbnails: BlobStore.containerUrl(connectionString, containers.thumbnails),
      snapshots: BlobStore.containerUrl(connectionString, containers.snapshots),
    });
  }

  /** Classifies `raw` (an absolute URL; anything unparsable is left to the downloader, which refuses it). */
  classify(raw: string): ThumbnailUrlVerdict {
    const value = raw.trim();
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return { kind: 'download' };
    }
    // By origin, not by path: dot segments and escapes can move a path to another container, never
    // to another host. (The parser lowercases the host and drops a default port, so every spelling
    // of our host counts.)
    if (url.origin !== this.origin) return { kind: 'download' };

    // Character for character: the parser's dot-segment resolution and our own decoding never
    // come into it, because nothing but the exact canonical spelling matches.
    const generated = this.nameIn(this.containers.thumbnails, value);
    if (generated !== null && GENERATED.test(generated)) return { kind: 'generated', blobName: generated };
    const durable = this.nameIn(this.containers.snapshots, value);
    const hash = durable === null ? null : DURABLE.exec(durable);
    if (hash && hash[2]!.startsWith(hash[1]!)) return { kind: 'download' };
    return {
      kind: 'refused',
      reason:
        'points at our storage but is not the exact URL of a thumbnail or media file it holds ' +
        '(copy the URL as the API gave it, or use an image hosted elsewhere, or "" to generate one)',
    };
  }

  /** The blob name `value` spells in `container` (its URL with a trailing slash), or null when it spells none exactly. */
  private nameIn(containerUrl: string, value: string): string | null {
    if (!value.startsWith(containerUrl)) return null;
    const name = value.slice(containerUrl.length);
    // Blob names here are plain ASCII paths: no escape, no dot segment, no query, no fragment.
    return /^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*\.[a-z0-9]+$/.test(name) ? name : null;
  }
}
