import type { LikeState } from '../db/community-likes.js';
import type { CommunityRow } from '../db/community.js';
import type { ModerationAuditEntry } from '../db/moderation.js';
import type { SnapshotRef } from '../db/sessions.js';
import type { SharePreviewRow } from '../db/share-codes.js';
import { SNAPSHOT_STATUSES, type CategoryRow, type SessionMediaRow, type SessionRow, type SnapshotMediaRow, type SnapshotRow, type SnapshotStatus, type AccountRow } from '../db/types.js';
import { JOB_STATES, QUEUE_NAMES, outboxJobId, type JobState, type OutboxStatus, type QueueName } from '../workers/index.js';
import type {
  ApiAdminOverview,
  ApiAdminSnapshot,
  ApiAdminSnapshotPage,
  ApiCategory,
  ApiCommunityDetail,
  ApiCommunityItem,
  ApiCommunityLike,
  ApiCommunityPage,
  ApiCommunitySnapshotMedia,
  ApiModerationAuditPage,
  ApiModerationResult,
  ApiRetryFailedAccepted,
  ApiSession,
  ApiSavedToLibrary,
  ApiSessionDetail,
  ApiSessionMedia,
  ApiShareLink,
  ApiSharePreview,
  ApiSnapshotRemoved,
  ApiSnapshotRerunAccepted,
  ApiThumbnailAccepted,
  ApiUser,
} from './schemas.js';

// Each serializer returns an object literal typed by its response schema (server/schemas.ts), so a
// field the schema lacks, or a missing one, is a compile error, and the served document stays true.

/** The moderation the session carries, told to its owner only (the moderator's reason is between them). */
function moderationToApi(row: SessionRow, viewerId: string): ApiSession['communityModeration'] {
  const { community_moderation: status, community_moderation_reason: reason, community_moderated_at: at } = row;
  return row.user_id === viewerId && status !== null && reason !== null && at !== null ? { status, reason, at: at.toISOString() } : null;
}

/** A session as `viewerId` sees it. */
export function sessionToApi(row: SessionRow, snapshot: SnapshotRef | null | undefined, viewerId: string): ApiSession {
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
    communityModeration: moderationToApi(row, viewerId),
  };
}

export function mediaToApi(row: SessionMediaRow): ApiSessionMedia {
  return {
    id: row.id,
    sessionId: row.session_id,
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

/** `GET /api/sessions/:id`'s body: the session and its media in order (also what a share link opens). */
export function sessionDetailToApi(row: SessionRow, snapshot: SnapshotRef | null | undefined, media: SessionMediaRow[], viewerId: string): ApiSessionDetail {
  return { session: sessionToApi(row, snapshot, viewerId), media: media.map(mediaToApi) };
}

export function userToApi(row: AccountRow): ApiUser {
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

export function categoryToApi(row: CategoryRow): ApiCategory {
  return { id: row.id, slug: row.slug, name: row.name, isDefault: row.is_default };
}

/** The ETag of a session's current version. */
export function sessionEtag(row: Pick<SessionRow, 'id' | 'version'>): string {
  return `"s${row.id}-v${row.version}"`;
}

type Page<T> = Omit<ApiCommunityPage, 'items'> & { items: T[] };

function pageToApi<T>(items: T[], total: number, page: number, pageSize: number): Page<T> {
  return { items, total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
}

export function communityItemToApi(row: CommunityRow): ApiCommunityItem {
  return {
    kind: 'session',
    id: row.id,
    sessionId: row.session_id,
    title: row.title,
    thumbnail: row.thumbnail_url,
    subreddits: row.subreddits,
    categoryId: row.category_id,
    categorySlug: row.category_slug,
    isManualMode: row.is_manual_mode,
    isImported: row.is_imported,
    likeCount: row.like_count,
    isLikedByUser: row.is_liked_by_user,
    isHidden: row.is_hidden,
    createdAt: (row.ready_at ?? row.created_at).toISOString(),
    user: { id: row.user_id, firstName: row.creator_first_name },
  };
}

export function communityPageToApi(rows: CommunityRow[], total: number, page: number, pageSize: number): ApiCommunityPage {
  return pageToApi(rows.map(communityItemToApi), total, page, pageSize);
}

export function likeToApi(state: LikeState): ApiCommunityLike {
  return { liked: state.liked, likeCount: state.likeCount };
}

export function snapshotMediaToApi(row: SnapshotMediaRow): ApiCommunitySnapshotMedia {
  return {
    id: row.id,
    mediaUrl: row.blob_url,
    type: row.type,
    contentType: row.content_type,
    bytes: row.bytes,
    checksum: row.checksum,
    caption: row.caption,
    redditPostId: row.reddit_post_id,
    redditPostUrl: row.reddit_post_url,
    subreddit: row.subreddit,
    order: row.order,
  };
}

/** A ready snapshot with its media at their durable URLs. */
export function communityDetailToApi(row: CommunityRow, media: SnapshotMediaRow[]): ApiCommunityDetail {
  return {
    ...communityItemToApi(row),
    intervalMin: row.interval_min,
    intervalMax: row.interval_max,
    transition: row.transition,
    captionTheme: row.caption_theme,
    aiPrompt: row.ai_prompt,
    mediaCount: row.media_count,
    media: media.map(snapshotMediaToApi),
  };
}

export function snapshotToAdmin(row: SnapshotRow): ApiAdminSnapshot {
  return {
    id: row.id,
    sessionId: row.session_id,
    userId: row.user_id,
    title: row.title,
    status: row.status,
    mediaCount: row.media_count,
    copiedCount: row.copied_count,
    bytesCopied: row.bytes_copied,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    readyAt: row.ready_at?.toISOString() ?? null,
  };
}

export function adminSnapshotPageToApi(rows: SnapshotRow[], total: number, page: number, pageSize: number): ApiAdminSnapshotPage {
  return pageToApi(rows.map(snapshotToAdmin), total, page, pageSize);
}

/** Each queue's job counts (as BullMQ's `getJobCounts(...JOB_STATES)` gives them), or why there are none. */
export type QueueCounts = readonly (readonly [QueueName, Partial<Record<JobState, number>>])[] | { error: string };

/** One value for each of a constant list of names. */
function recordOf<K extends string, V>(names: readonly K[], value: (name: K) => V): Record<K, V> {
  return Object.fromEntries(names.map((name) => [name, value(name)])) as Record<K, V>;
}

export function adminOverviewToApi(queues: QueueCounts, outbox: OutboxStatus, snapshots: Record<SnapshotStatus, number>): ApiAdminOverview {
  const byQueue = (counts: Map<QueueName, Partial<Record<JobState, number>>>) =>
    recordOf(QUEUE_NAMES, (queue) => recordOf(JOB_STATES, (state) => counts.get(queue)?.[state] ?? 0));
  return {
    queues: 'error' in queues ? { error: queues.error } : byQueue(new Map(queues)),
    outbox: {
      backlog: outbox.backlog,
      oldestUndispatchedAt: outbox.oldestUndispatchedAt?.toISOString() ?? null,
      oldestAgeSeconds: outbox.oldestAgeSeconds,
      failing: outbox.failing,
      unfinished: outbox.unfinished,
      oldestUnfinishedAgeSeconds: outbox.oldestUnfinishedAgeSeconds,
      redispatched: outbox.redispatched,
      recentErrors: outbox.recentErrors.map((e) => ({
        id: e.id,
        queue: e.queue,
        jobName: e.jobName,
        attempts: e.attempts,
        lastError: e.lastError,
        nextAttemptAt: e.nextAttemptAt.toISOString(),
      })),
    },
    snapshots: recordOf(SNAPSHOT_STATUSES, (status) => snapshots[status]),
  };
}

export function snapshotRerunToApi(snapshotId: number, outboxId: number): ApiSnapshotRerunAccepted {
  return { snapshotId, outboxId, jobId: outboxJobId(outboxId) };
}

export function thumbnailAcceptedToApi(sessionId: number, regeneration: { generation: number; outboxId: number }): ApiThumbnailAccepted {
  return { sessionId, generation: regeneration.generation, outboxId: regeneration.outboxId, jobId: outboxJobId(regeneration.outboxId) };
}

export function retryFailedToApi(queue: QueueName, retried: number): ApiRetryFailedAccepted {
  return { queue, retried };
}

export function moderationResultToApi(result: { action: ApiModerationResult['action']; snapshotId: number; sessionId: number; isHidden: boolean; auditId: number }): ApiModerationResult {
  return { action: result.action, snapshotId: result.snapshotId, sessionId: result.sessionId, isHidden: result.isHidden, auditId: result.auditId };
}

export function snapshotRemovedToApi(result: { snapshotId: number; sessionId: number; auditId: number }, purgeOutboxId: number): ApiSnapshotRemoved {
  return { action: 'remove', snapshotId: result.snapshotId, sessionId: result.sessionId, auditId: result.auditId, purgeOutboxId, purgeJobId: outboxJobId(purgeOutboxId) };
}

export function moderationAuditPageToApi(rows: ModerationAuditEntry[], total: number, page: number, pageSize: number): ApiModerationAuditPage {
  const entries = rows.map((r) => ({
    id: r.id,
    action: r.action,
    adminId: r.admin_id,
    adminEmail: r.admin_email,
    snapshotId: r.snapshot_id,
    sessionId: r.session_id,
    title: r.snapshot_title,
    reason: r.reason,
    createdAt: r.created_at.toISOString(),
  }));
  return pageToApi(entries, total, page, pageSize);
}

/** A session's share link: the code, and the page it opens under the public base URL. */
export function shareLinkToApi(code: string, publicBaseUrl: string): ApiShareLink {
  return { shareCode: code, shareUrl: `${publicBaseUrl}/shared/${code}` };
}

export function sharePreviewToApi(row: SharePreviewRow): ApiSharePreview {
  return { title: row.title, thumbnail: row.thumbnail, mediaCount: row.media_count, creatorFirstName: row.creator_first_name };
}

export function savedToLibraryToApi(sessionId: number, reused: boolean): ApiSavedToLibrary {
  return { success: true, sessionId, reused };
}
