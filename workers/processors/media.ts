import type { Job } from 'bullmq';
import { findSession, writeSyncedMedia } from '../../db/sessions.js';
import type { SessionRow } from '../../db/types.js';
import { listingToMedia, listingUrl } from '../media/reddit.js';
import { safeFetchJson } from '../lib/safe-fetch.js';
import type { JobPayload } from '../queues/contracts.js';
import { fetchOptions, type ProcessorDeps } from './deps.js';

export type SyncOutcome =
  | { status: 'synced'; count: number }
  | { status: 'skipped'; reason: 'missing' | 'manual' | 'imported' | 'current' | 'stale' };

const sameList = (a: readonly string[] | null, b: readonly string[]): boolean =>
  a !== null && a.length === b.length && a.every((v, i) => v === b[i]);

/** True when the session's media were synced from its current subreddits (or it keeps its own). */
export function mediaAreCurrent(session: SessionRow): boolean {
  return session.is_manual_mode || session.is_imported || sameList(session.media_subreddits, session.subreddits);
}

/**
 * The syncs running in this process, per database and session: a subreddits change writes a media
 * job and a thumbnail job at once, and the thumbnail job syncs first when the media are not current,
 * so without this both would fetch the same listing and replace the same rows.
 */
const running = new WeakMap<object, Map<number, Promise<unknown>>>();

/**
 * Replaces a session's media with the posts of its subreddits' listing, in one transaction, unless
 * they are current already (synced from its current subreddits: media the media job's sync and a
 * thumbnail or snapshot job's would both write). Manual-mode and imported sessions keep their media.
 * If the subreddits changed while the listing was fetched, nothing is written: the job for the
 * newer subreddits will do it. One sync of a session runs at a time in a process; a second waits
 * for it and then usually finds the media current. `ownJob` is true for the media job itself,
 * whose sync records its completion; thumbnail and snapshot jobs have writes of their own to come.
 */
export async function syncSessionMedia(deps: ProcessorDeps, sessionId: number, ownJob = true): Promise<SyncOutcome> {
  let syncs = running.get(deps.knex);
  if (!syncs) running.set(deps.knex, (syncs = new Map()));
  for (let other = syncs.get(sessionId); other; other = syncs.get(sessionId)) await other.catch(() => undefined);
  const work = syncOnce(deps, sessionId, ownJob);
  syncs.set(sessionId, work);
  try {
    return await work;
  } finally {
    if (syncs.get(sessionId) === work) syncs.delete(sessionId);
  }
}

async function syncOnce(deps: ProcessorDeps, sessionId: number, ownJob: boolean): Promise<SyncOutcome> {
  const session = await findSession(deps.knex, sessionId);
  if (!session) return { status: 'skipped', reason: 'missing' };
  if (session.is_manual_mode) return { status: 'skipped', reason: 'manual' };
  if (session.is_imported) return { status: 'skipped', reason: 'imported' };
  if (mediaAreCurrent(session)) return { status: 'skipped', reason: 'current' };

  const subreddits = session.subreddits;
  const base = deps.config.redditBaseUrl;
  const items = subreddits.length === 0 ? [] : listingToMedia(await safeFetchJson(listingUrl(base, subreddits), fetchOptions(deps)), base);

  const media = items.map((m) => ({
    media_url: m.mediaUrl,
    thumbnail: m.thumbnail,
    caption: m.caption,
    type: m.type,
    reddit_post_id: m.redditPostId,
    reddit_post_url: m.redditPostUrl,
    subreddit: m.subreddit,
    previews: m.previews,
  }));
  return deps.knex.transaction(async (trx) => {
    // The media job's own sync is its last write: its completion record commits with it (one
    // transaction, one WAL flush, instead of a second one after).
    const completedOutboxId = ownJob ? (deps.completion?.outboxId ?? null) : null;
    if (await writeSyncedMedia(trx, { sessionId, subreddits, items: media, completedOutboxId })) {
      if (completedOutboxId !== null) deps.completion!.recorded = true;
      return { status: 'synced', count: items.length } as const;
    }
    // Not claimed: why, as the row is now.
    const now = await findSession(trx, sessionId);
    if (!now) return { status: 'skipped', reason: 'missing' } as const;
    if (!sameList(now.subreddits, subreddits) || now.is_manual_mode || now.is_imported) return { status: 'skipped', reason: 'stale' } as const;
    // Another process synced these subreddits while this one fetched.
    return { status: 'skipped', reason: 'current' } as const;
  });
}

/** media:sync — replace the session's media from its subreddits' listing. */
export async function syncMedia(deps: ProcessorDeps, job: Pick<Job<JobPayload<'media', 'sync'>>, 'data'>): Promise<SyncOutcome> {
  return syncSessionMedia(deps, job.data.sessionId);
}
