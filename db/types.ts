/** Row types of the tables (snake_case, as Postgres returns them). */

// Each fact once: the API's schemas and the admin filters list these constants, and the row types
// are derived from them. (The landed migrations' CHECK constraints spell the same lists: history
// is never edited.)
export const ROLES = ['user', 'admin', 'super_admin'] as const;
export type Role = (typeof ROLES)[number];
/** The roles that may operate (dashboard, admin API). */
export const ADMIN_ROLES: readonly Role[] = ['admin', 'super_admin'];
export const TRANSITIONS = ['fade', 'slide', 'zoom', 'flip', 'none'] as const;
export type Transition = (typeof TRANSITIONS)[number];
export const MEDIA_TYPES = ['image', 'gif', 'video'] as const;
export type MediaType = (typeof MEDIA_TYPES)[number];
/** A community snapshot's life: `pending → copying → ready`, or `failed` (rerun puts it back to `pending`). */
export const SNAPSHOT_STATUSES = ['pending', 'copying', 'ready', 'failed'] as const;
export type SnapshotStatus = (typeof SNAPSHOT_STATUSES)[number];
export const CATEGORY_SOURCES = ['default', 'manual'] as const;
export type CategorySource = (typeof CATEGORY_SOURCES)[number];
export const THUMBNAIL_SOURCES = ['auto', 'custom'] as const;
export type ThumbnailSource = (typeof THUMBNAIL_SOURCES)[number];
/** An admin's moderation in force on a session's community item: `hidden` (every snapshot hidden) or `removed` (sharing refused). */
export const COMMUNITY_MODERATIONS = ['hidden', 'removed'] as const;
export type CommunityModeration = (typeof COMMUNITY_MODERATIONS)[number];

export interface UserRow {
  id: string;
  email: string;
  first_name: string | null;
  last_name: string | null;
  profile_image_url: string | null;
  password_hash: string;
  role: Role;
  created_at: Date;
  updated_at: Date;
}

/**
 * A user as a request carries it (`ctx.state.user`): every column but the password hash, which only
 * the login reads ({@link ACCOUNT_COLUMNS} in db/users.ts).
 */
export type AccountRow = Omit<UserRow, 'password_hash'>;

export interface CategoryRow {
  id: number;
  slug: string;
  name: string;
  is_default: boolean;
  created_at: Date;
}

export interface SessionRow {
  id: number;
  user_id: string;
  title: string;
  subreddits: string[];
  category_id: number;
  category_source: CategorySource;
  interval_min: number;
  interval_max: number;
  transition: Transition;
  thumbnail: string | null;
  thumbnail_source: ThumbnailSource;
  thumbnail_generation: number;
  /** The newest generated thumbnail's blob name (also after a clear or a custom thumbnail); null if none. */
  thumbnail_blob: string | null;
  /** A saved session's thumbnail: a reference to a durable blob (docs/architecture.md §5); null otherwise. */
  thumbnail_sha256: string | null;
  ai_prompt: string | null;
  caption_theme: string;
  is_public: boolean;
  /**
   * The share link made the session public (it was private), and its owner has not set `is_public`
   * since: revoking the link makes it private again.
   */
  public_by_share: boolean;
  share_to_community: boolean;
  /**
   * The moderation in force on the session's community item, which outlives the snapshot (an
   * unshare deletes that): `hidden` makes every new snapshot hidden, `removed` refuses sharing until
   * an admin lifts it; null when none. Reason and time are the moderator's, for the owner to read.
   */
  community_moderation: CommunityModeration | null;
  community_moderation_reason: string | null;
  community_moderated_at: Date | null;
  is_favorite: boolean;
  is_manual_mode: boolean;
  is_imported: boolean;
  import_source: string | null;
  /** What a saved copy was saved from (`community:<snapshot id>`); null otherwise. */
  import_url: string | null;
  media_subreddits: string[] | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** One size of a listing preview image. */
export interface PreviewImage {
  url: string;
  width: number;
  height: number;
}

/** A media item's listing preview: the source image's size and the same image at smaller sizes. */
export interface MediaPreviews {
  source: { width: number; height: number } | null;
  resolutions: PreviewImage[];
}

export interface SessionMediaRow {
  id: number;
  session_id: number;
  media_url: string;
  thumbnail: string | null;
  caption: string | null;
  type: MediaType;
  reddit_post_id: string | null;
  reddit_post_url: string | null;
  subreddit: string | null;
  order: number;
  /** What the listing said about the item's preview (null: synced before previews were kept, or added by hand). */
  previews: MediaPreviews | null;
  /** A saved session's media item: a reference to its durable blob (docs/architecture.md §5); null otherwise. */
  blob_sha256: string | null;
}

export interface SnapshotRow {
  id: number;
  session_id: number;
  user_id: string;
  title: string;
  subreddits: string[];
  category_id: number;
  interval_min: number;
  interval_max: number;
  transition: Transition;
  caption_theme: string;
  ai_prompt: string | null;
  is_manual_mode: boolean;
  is_imported: boolean;
  source_thumbnail: string | null;
  thumbnail_blob_name: string | null;
  thumbnail_url: string | null;
  /** The copied thumbnail's durable blob; null before it is copied and for snapshots of the old layout. */
  thumbnail_sha256: string | null;
  status: SnapshotStatus;
  media_count: number;
  /** Equal to its rows in community_likes: changed only in the transaction that adds or removes one. */
  like_count: number;
  copied_count: number;
  bytes_copied: number;
  last_error: string | null;
  attempts: number;
  created_at: Date;
  updated_at: Date;
  ready_at: Date | null;
  /** Hidden by an admin: out of the feed for everyone else. */
  is_hidden: boolean;
  hidden_at: Date | null;
}

export interface SnapshotMediaRow {
  id: number;
  snapshot_id: number;
  source_media_id: number | null;
  source_url: string;
  type: MediaType;
  caption: string | null;
  reddit_post_id: string | null;
  reddit_post_url: string | null;
  subreddit: string | null;
  blob_name: string | null;
  blob_url: string | null;
  content_type: string | null;
  bytes: number | null;
  checksum: string | null;
  order: number;
  copied_at: Date | null;
  /** The copy's durable blob; null before it is copied and for items of the old layout (`snapshots/<id>/…`). */
  blob_sha256: string | null;
}

/** One content-addressed durable blob (docs/architecture.md §5): stored once, referenced by any number of copies. */
export interface DurableBlobRow {
  sha256: string;
  blob_name: string;
  content_type: string;
  bytes: number;
  created_at: Date;
  /** When the collector found nothing referencing it; null while referenced (or not yet checked). */
  unreferenced_since: Date | null;
}

export const OUTBOX_FINAL_STATES = ['completed', 'failed'] as const;
export type OutboxFinalState = (typeof OUTBOX_FINAL_STATES)[number];

export interface OutboxRow {
  id: number;
  queue: string;
  job_name: string;
  payload: Record<string, unknown>;
  created_at: Date;
  dispatched_at: Date | null;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date;
  /** When the job finished for good (completed, or failed with the reason in last_error); null while it may still run. */
  finished_at: Date | null;
  final_state: OutboxFinalState | null;
  /** How many times the reconciler dispatched the job again because Redis no longer had it. */
  redispatches: number;
}
