import { preparedQuery, type Knex } from './knex.js';

/**
 * What a copy last fetched from a media URL, with the durable blob that holds those bytes
 * (written by `recordSnapshotCopies`, with the copy's references).
 */
export interface MediaSource {
  sourceUrl: string;
  /** The strong ETag the source served the bytes with. */
  etag: string;
  contentType: string;
  sha256: string;
  blobName: string;
  bytes: number;
  /** Still within the freshness the source gave (its max-age): reused without asking it. */
  fresh: boolean;
}

/** The known sources among `urls` whose blobs are still recorded, by URL; one statement. */
export async function findMediaSources(knex: Knex, urls: readonly string[]): Promise<Map<string, MediaSource>> {
  if (urls.length === 0) return new Map();
  const rows = await preparedQuery<MediaSource>(
    knex,
    'find-media-sources',
    `SELECT s.source_url AS "sourceUrl", s.etag, s.content_type AS "contentType", s.sha256, d.blob_name AS "blobName", d.bytes, s.fresh_until > now() AS fresh
       FROM media_sources s JOIN durable_blobs d ON d.sha256 = s.sha256
      WHERE s.source_url = ANY($1::text[])`,
    [[...new Set(urls)]],
  );
  return new Map(rows.map((r) => [r.sourceUrl, r]));
}
