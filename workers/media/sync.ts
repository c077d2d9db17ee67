import type { SessionRow } from '../../db/types.js';
import { safeFetchJson } from '../lib/safe-fetch.js';
import { fetchOptions, type ProcessorDeps } from '../processors/deps.js';
import { listingToMedia, listingUrl } from './reddit.js';

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
 * Replaces a session's media with the posts of its subreddits' listing, in one transaction.
 * Manual-mode and imported sessions keep their media. If the subreddits changed while the listing
 * was fetched, nothing is written: the job for the newer subreddits will do it.
 */
export async function syncSessionMedia(deps: ProcessorDeps, sessionId: number, force = true): Promise<SyncOutcome> {
  const session = await deps.knex<SessionRow>('sessions').where({ id: sessionId }).first();
  if (!session) return { status: 'skipped', reason: 'missing' };
  if (session.is_manual_mode) return { status: 'skipped', reason: 'manual' };
  if (session.is_imported) return { status: 'skipped', reason: 'imported' };
  if (!force && mediaAreCurrent(session)) return { status: 'skipped', reason: 'current' };

  const subreddits = session.subreddits;
  const base = deps.config.redditBaseUrl;
  const items =
    subreddits.length === 0
      ? []
      : listingToMedia(
          await safeFetchJson(listingUrl(base, subreddits), fetchOptions(deps)),
          base,
        );

  return deps.knex.transaction(async (trx) => {
    const locked = await trx<SessionRow>('sessions').where({ id: sessionId }).forUpdate().first();
    if (!locked) return { status: 'skipped', reason: 'missing' } as const;
    if (!sameList(locked.subreddits, subreddits) || locked.is_manual_mode || locked.is_imported) {
      return { status: 'skipped', reason: 'stale' } as const;
    }
    await trx('session_media').where({ session_id: sessionId }).del();
    if (items.length > 0) {
      await trx('session_media').insert(
        items.map((m, order) => ({
          session_id: sessionId,
          media_url: m.mediaUrl,
          thumbnail: m.thumbnail,
          caption: m.caption,
          type: m.type,
          reddit_post_id: m.redditPostId,
          reddit_post_url: m.redditPostUrl,
          subreddit: m.subreddit,
          order,
        })),
      );
    }
    await trx('sessions').where({ id: sessionId }).update({ media_subreddits: subreddits });
    return { status: 'synced', count: items.length } as const;
  });
}
