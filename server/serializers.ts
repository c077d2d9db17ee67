import type { SnapshotRef } from '../db/sessions.js';
import type { CategoryRow, SessionMediaRow, SessionRow, UserRow } from '../db/types.js';

export function sessionToApi(row: SessionRow, snapshot: SnapshotRef | null | undefined) {
  return {
    id: row.id,
    title: row.title,
    userId: row.user_id,
    subreddits: row.subreddits,
    categoryId: row.category_id,
    categorySource: row.category_source,
    intervalMin: row.interval_min,
    intervalMax: row.interval_max,
    transition: row.transition,
    thumbnail: row.thumbnail,
    aiPrompt: row.ai_prompt,
    captionTheme: row.caption_theme,
    isPublic: row.is_public,
    shareToCommunity: row.share_to_community,
    isFavorite: row.is_favorite,
    isManualMode: row.is_manual_mode,
    isImported: row.is_imported,
    importSource: row.import_source,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    communitySnapshot: snapshot ? { id: snapshot.id, status: snapshot.status } : null,
  };
}

export function mediaToApi(row: SessionMediaRow) {
  return {
    id: row.id,
    mediaUrl: row.media_url,
    thumbnail: row.thumbnail,
    caption: row.caption,
    type: row.type,
    redditPostId: row.reddit_post_id,
    redditPostUrl: row.reddit_post_url,
    subreddit: row.subreddit,
    order: row.order,
  };
}

export function userToApi(row: UserRow) {
  return {
    id: row.id,
    email: row.email,
    firstName: row.first_name,
    lastName: row.last_name,
    profileImageUrl: row.profile_image_url,
    role: row.role,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export function categoryToApi(row: CategoryRow) {
  return { id: row.id, slug: row.slug, name: row.name, isDefault: row.is_default };
}

/** The ETag of a session's current version. */
export function sessionEtag(row: Pick<SessionRow, 'id' | 'version'>): string {
  return `"s${row.id}-v${row.version}"`;
}
