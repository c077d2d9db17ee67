import { COMMUNITY_CONTENT_TYPES, COMMUNITY_SORTS } from '../db/community.js';
import { MODERATION_ACTIONS } from '../db/moderation.js';
import { CATEGORY_SOURCES, COMMUNITY_MODERATIONS, MEDIA_TYPES, ROLES, SNAPSHOT_STATUSES, TRANSITIONS } from '../db/types.js';
import { JOB_STATES, QUEUE_NAMES } from '../workers/index.js';
import { typedSchema, type FromSchema, type JsonSchema } from './validation.js';

export const MAX_SUBREDDITS = 25;

// The parts are `as const` so that `FromSchema` reads literal types from them.
const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const bool = { type: 'boolean' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const interval = { type: 'integer', minimum: 1, maximum: 60 } as const;

/** One of a constant list of strings. */
const enumOf = <const V extends string>(values: readonly V[]) => ({ type: 'string', enum: [...values] }) as const;
const arrayOf = <const S extends JsonSchema>(items: S) => ({ type: 'array', items }) as const;

/** The schema with `null` allowed too: a type array, which both ajv and OpenAPI 3.1 read as such. */
function nullable<const S extends { type: string }>(schema: S): Omit<S, 'type'> & { type: readonly [S['type'], 'null'] } {
  return { ...schema, type: [schema.type, 'null'] as const };
}

/** A response object: every property is always sent (`required`), and nothing else is. */
function object<const P extends Record<string, JsonSchema>>(properties: P) {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties) as (keyof P & string)[], properties } as const;
}

/** A map from each of a constant list of names to one schema. */
function eachOf<const K extends string, const S extends JsonSchema>(names: readonly K[], schema: S): Record<K, S> {
  return Object.fromEntries(names.map((name) => [name, schema])) as Record<K, S>;
}

// ---- Requests: ajv validates them, and their types are derived from them.

/** The editable session fields; the create and PATCH bodies are built from this one list. */
function sessionFields(captionThemes: string[]) {
  return {
    title: { type: 'string', maxLength: 1000, description: 'must be a string of 1-200 characters' },
    subreddits: {
      description: 'must be a comma-separated string or an array of subreddit names',
      anyOf: [
        { type: 'string', maxLength: 5000 },
        { type: 'array', maxItems: 200, items: { type: 'string', maxLength: 200 } },
      ],
    },
    categoryId: { type: ['integer', 'null'], minimum: 1, maximum: 2147483647 },
    intervalMin: interval,
    intervalMax: interval,
    transition: enumOf(TRANSITIONS),
    aiPrompt: { type: ['string', 'null'], maxLength: 2000 },
    captionTheme: { type: 'string', enum: captionThemes },
    thumbnail: {
      description: 'must be an http(s) URL, or "" to generate one from the subreddits',
      type: 'string',
      maxLength: 2048,
    },
    isPublic: bool,
    shareToCommunity: bool,
    isFavorite: bool,
    isManualMode: bool,
  } as const;
}

/** Request schemas, built once per app (the caption themes are configured). */
export function buildSchemas(captionThemes: string[]) {
  const fields = sessionFields(captionThemes);
  return {
    patchSession: typedSchema({ type: 'object', additionalProperties: false, properties: fields }),
    createSession: typedSchema({ type: 'object', additionalProperties: false, required: ['title', 'subreddits'], properties: fields }),
    register: typedSchema({
      type: 'object',
      additionalProperties: false,
      required: ['email', 'password'],
      properties: {
        email: { type: 'string', maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' },
        password: { type: 'string', minLength: 8, maxLength: 1024 },
        firstName: nullable({ type: 'string', maxLength: 100 }),
        lastName: nullable({ type: 'string', maxLength: 100 }),
      },
    }),
    login: typedSchema({
      type: 'object',
      additionalProperties: false,
      required: ['email', 'password'],
      properties: { email: { type: 'string', maxLength: 254 }, password: { type: 'string', maxLength: 1024 } },
    }),
    // The reference's POST /api/login: the same credentials, and where to send the browser after it.
    loginRedirect: typedSchema({
      type: 'object',
      additionalProperties: false,
      required: ['email', 'password'],
      properties: { email: { type: 'string', maxLength: 254 }, password: { type: 'string', maxLength: 1024 }, redirect: { type: 'string', maxLength: 2048 } },
    }),
    // The length is checked after trimming (1-500, server/services/moderation.ts); this bound only keeps a huge string out.
    moderate: typedSchema({
      type: 'object',
      additionalProperties: false,
      required: ['reason'],
      properties: { reason: { type: 'string', maxLength: 10_000, description: 'must be a string of 1-500 characters (after trimming)' } },
    }),
  };
}

export type Schemas = ReturnType<typeof buildSchemas>;
export type SessionBody = FromSchema<Schemas['patchSession']>;
export type CreateSessionBody = FromSchema<Schemas['createSession']>;
export type ModerateBody = FromSchema<Schemas['moderate']>;

const SNAPSHOT_STATUS = enumOf(SNAPSHOT_STATUSES);

// ---- Query strings: validated like bodies (validateQuery coerces each value from text), and the
// OpenAPI document's query parameters are generated from these.

const MAX_INT = 2147483647;
const positiveInt = { type: 'integer', minimum: 1, maximum: MAX_INT } as const;
const text = <const N extends number>(maxLength: N, description?: string) => ({ type: 'string', maxLength, ...(description ? { description } : {}) }) as const;
const query = <const P extends Record<string, JsonSchema>>(properties: P) => typedSchema({ type: 'object', properties });

/**
 * `page` (from 1) and `pageSize` (1 to `max`, default `size`). A page may not end past row
 * MAX_PAGE_DEPTH (`pageWindow`, routes/params.ts: it takes both parameters, so no schema states it).
 */
const paging = <const M extends number, const D extends number>(max: M, size: D) =>
  ({ page: { ...positiveInt, default: 1 }, pageSize: { type: 'integer', minimum: 1, maximum: max, default: size } }) as const;

/**
 * Without `page`/`pageSize` the list is every session up to `cap` (the reference's clients do not
 * page); past it, and whenever paging is asked for, `X-Total-Count` and a `Link: rel="next"` say so.
 */
export const SESSIONS_PAGE_SIZE = { default: 100, max: 1_000, cap: 1_000 } as const;

/** Each route's query string, by `METHOD /path` as the route table spells it. */
export const QUERY_SCHEMAS = {
  'GET /api/sessions': query({
    categoryId: positiveInt,
    categorySlug: text(120),
    page: { ...positiveInt, description: 'From 1 (the default)' },
    pageSize: {
      type: 'integer',
      minimum: 1,
      maximum: SESSIONS_PAGE_SIZE.max,
      description: `Default ${SESSIONS_PAGE_SIZE.default} when paging (page or pageSize given); without either, every session up to ${SESSIONS_PAGE_SIZE.cap}`,
    },
  }),
  'GET /api/community': query({
    sort: { ...enumOf(COMMUNITY_SORTS), default: 'new' },
    // The feed holds sessions: the media-only values give an empty page.
    contentType: { ...enumOf(COMMUNITY_CONTENT_TYPES), default: 'all' },
    search: text(200, "A substring of the title or of the creator's name"),
    subreddit: text(64, 'A substring of any of its subreddit names (a leading r/ is dropped)'),
    creator: text(100, "A substring of the creator's first or last name"),
    creatorId: text(64),
    categoryId: positiveInt,
    categorySlug: text(120),
    ...paging(100, 20),
  }),
  'GET /api/admin/snapshots': query({ status: SNAPSHOT_STATUS, ...paging(200, 50) }),
  'POST /api/admin/sessions/:id/thumbnail': query({ force: { type: 'boolean', default: false, description: "Replace a custom thumbnail its owner chose" } }),
  'GET /api/admin/audit': query(paging(200, 50)),
  'GET /admin/community': query({ status: SNAPSHOT_STATUS, hidden: bool, ...paging(25, 25) }),
};

export type QueryRoute = keyof typeof QUERY_SCHEMAS;
export type QueryOf<R extends QueryRoute> = FromSchema<(typeof QUERY_SCHEMAS)[R]>;

// ---- Responses: each serializer returns its schema's type, so a field the schema lacks does not compile.

export const QUEUE_NAME = enumOf(QUEUE_NAMES);

const SESSION = object({
  id: int,
  title: str,
  userId: str,
  subreddits: arrayOf(str),
  categoryId: int,
  categorySource: enumOf(CATEGORY_SOURCES),
  intervalMin: int,
  intervalMax: int,
  transition: enumOf(TRANSITIONS),
  thumbnail: nullable(str),
  aiPrompt: nullable(str),
  captionTheme: str,
  isPublic: bool,
  shareToCommunity: bool,
  isFavorite: bool,
  isManualMode: bool,
  isImported: bool,
  importSource: nullable(str),
  createdAt: dateTime,
  updatedAt: dateTime,
  communitySnapshot: nullable(object({ id: int, status: SNAPSHOT_STATUS })),
  // The moderation an admin put on the session's community item, in the owner's view only (null
  // otherwise, and for everyone else): `hidden` (new snapshots are hidden too) or `removed`
  // (sharing is refused until an admin lifts it), with the moderator's reason and time.
  communityModeration: nullable(object({ status: enumOf(COMMUNITY_MODERATIONS), reason: str, at: dateTime })),
});

const MEDIA_ITEM = object({
  id: int,
  sessionId: int,
  mediaUrl: str,
  thumbnail: nullable(str),
  caption: nullable(str),
  type: enumOf(MEDIA_TYPES),
  redditPostId: nullable(str),
  redditPostUrl: nullable(str),
  subreddit: nullable(str),
  order: int,
});

const USER = object({
  id: str,
  email: str,
  firstName: nullable(str),
  lastName: nullable(str),
  profileImageUrl: nullable(str),
  role: enumOf(ROLES),
  createdAt: dateTime,
  updatedAt: dateTime,
});

const FIELD_ERROR = object({ field: str, pointer: str, reason: str });

/** The error envelope of docs/api.md §4; `details` and `retryAfter` only on the errors that carry them. */
const ERROR = {
  type: 'object',
  additionalProperties: false,
  required: ['error', 'message', 'code'],
  properties: { error: str, message: str, code: str, details: object({ fields: arrayOf(FIELD_ERROR) }), retryAfter: int },
} as const;

/** `{items, total, page, pageSize, totalPages}`, the community feed's and the admin lists' page. */
const pageOf = <const S extends JsonSchema>(item: S) => object({ items: arrayOf(item), total: int, page: int, pageSize: int, totalPages: int });

const COMMUNITY_ITEM = object({
  kind: { type: 'string', const: 'session' },
  id: int,
  sessionId: int,
  title: str,
  thumbnail: nullable(str),
  subreddits: arrayOf(str),
  categoryId: int,
  categorySlug: str,
  isManualMode: bool,
  isImported: bool,
  likeCount: int,
  // The logged-in user's own like; false when nobody is logged in.
  isLikedByUser: bool,
  // True only in an admin's view: nobody else is shown a hidden item.
  isHidden: bool,
  createdAt: dateTime,
  user: object({ id: str, firstName: nullable(str) }),
});

const SNAPSHOT_MEDIA_ITEM = object({
  id: int,
  mediaUrl: nullable(str),
  type: enumOf(MEDIA_TYPES),
  contentType: nullable(str),
  bytes: nullable(int),
  checksum: nullable(str),
  caption: nullable(str),
  redditPostId: nullable(str),
  redditPostUrl: nullable(str),
  subreddit: nullable(str),
  order: int,
});

const ADMIN_SNAPSHOT = object({
  id: int,
  sessionId: int,
  userId: str,
  title: str,
  status: SNAPSHOT_STATUS,
  mediaCount: int,
  copiedCount: int,
  bytesCopied: int,
  attempts: int,
  lastError: nullable(str),
  createdAt: dateTime,
  updatedAt: dateTime,
  readyAt: nullable(dateTime),
});

const ADMIN_OVERVIEW = object({
  // The job counts of every queue, or why they could not be read.
  queues: { anyOf: [object(eachOf(QUEUE_NAMES, object(eachOf(JOB_STATES, int)))), object({ error: str })] },
  outbox: object({
    backlog: int,
    oldestUndispatchedAt: nullable(dateTime),
    oldestAgeSeconds: nullable(num),
    failing: int,
    // Dispatched, not finished: how many, the oldest's age; dispatches the reconciler added.
    unfinished: int,
    oldestUnfinishedAgeSeconds: nullable(num),
    redispatched: int,
    recentErrors: arrayOf(object({ id: int, queue: str, jobName: str, attempts: int, lastError: str, nextAttemptAt: dateTime })),
  }),
  snapshots: object(eachOf(SNAPSHOT_STATUSES, int)),
});

const MODERATION_ACTION = enumOf(MODERATION_ACTIONS);

const MODERATION_AUDIT_ENTRY = object({
  id: int,
  action: MODERATION_ACTION,
  adminId: str,
  adminEmail: nullable(str),
  snapshotId: int,
  sessionId: nullable(int),
  title: nullable(str),
  reason: str,
  createdAt: dateTime,
});

/** The response schemas, by their names in the OpenAPI document's components. */
export const RESPONSE_SCHEMAS = {
  Session: SESSION,
  SessionMedia: MEDIA_ITEM,
  SessionDetail: object({ session: SESSION, media: arrayOf(MEDIA_ITEM) }),
  User: USER,
  Category: object({ id: int, slug: str, name: str, isDefault: bool }),
  Error: ERROR,
  CommunityItem: COMMUNITY_ITEM,
  CommunityPage: pageOf(COMMUNITY_ITEM),
  CommunitySnapshotMedia: SNAPSHOT_MEDIA_ITEM,
  CommunityLike: object({ liked: bool, likeCount: int }),
  CommunityDetail: object({
    ...COMMUNITY_ITEM.properties,
    intervalMin: int,
    intervalMax: int,
    transition: enumOf(TRANSITIONS),
    captionTheme: str,
    aiPrompt: nullable(str),
    mediaCount: int,
    media: arrayOf(SNAPSHOT_MEDIA_ITEM),
  }),
  AdminOverview: ADMIN_OVERVIEW,
  AdminSnapshot: ADMIN_SNAPSHOT,
  AdminSnapshotPage: pageOf(ADMIN_SNAPSHOT),
  SnapshotRerunAccepted: object({ snapshotId: int, outboxId: int, jobId: str }),
  ThumbnailAccepted: object({ sessionId: int, generation: int, outboxId: int, jobId: str }),
  RetryFailedAccepted: object({ queue: QUEUE_NAME, retried: int }),
  ModerationResult: object({ action: MODERATION_ACTION, snapshotId: int, sessionId: int, isHidden: bool, auditId: int }),
  SnapshotRemoved: object({ action: { type: 'string', const: 'remove' }, snapshotId: int, sessionId: int, auditId: int, purgeOutboxId: int, purgeJobId: str }),
  ModerationAuditEntry: MODERATION_AUDIT_ENTRY,
  ModerationAuditPage: pageOf(MODERATION_AUDIT_ENTRY),
  ShareLink: object({ shareCode: { type: 'string', format: 'uuid' }, shareUrl: str }),
  // All an anonymous holder of a share link is shown.
  SharePreview: object({ title: str, thumbnail: nullable(str), mediaCount: int, creatorFirstName: nullable(str) }),
  SavedToLibrary: object({ success: { type: 'boolean', const: true }, sessionId: int, reused: bool }),
};

type Responses = typeof RESPONSE_SCHEMAS;
export type ApiSession = FromSchema<Responses['Session']>;
export type ApiSessionMedia = FromSchema<Responses['SessionMedia']>;
export type ApiSessionDetail = FromSchema<Responses['SessionDetail']>;
export type ApiUser = FromSchema<Responses['User']>;
export type ApiCategory = FromSchema<Responses['Category']>;
export type ApiCommunityItem = FromSchema<Responses['CommunityItem']>;
export type ApiCommunityPage = FromSchema<Responses['CommunityPage']>;
export type ApiCommunitySnapshotMedia = FromSchema<Responses['CommunitySnapshotMedia']>;
export type ApiCommunityLike = FromSchema<Responses['CommunityLike']>;
export type ApiCommunityDetail = FromSchema<Responses['CommunityDetail']>;
export type ApiAdminOverview = FromSchema<Responses['AdminOverview']>;
export type ApiAdminSnapshot = FromSchema<Responses['AdminSnapshot']>;
export type ApiAdminSnapshotPage = FromSchema<Responses['AdminSnapshotPage']>;
export type ApiSnapshotRerunAccepted = FromSchema<Responses['SnapshotRerunAccepted']>;
export type ApiThumbnailAccepted = FromSchema<Responses['ThumbnailAccepted']>;
export type ApiRetryFailedAccepted = FromSchema<Responses['RetryFailedAccepted']>;
export type ApiModerationResult = FromSchema<Responses['ModerationResult']>;
export type ApiSnapshotRemoved = FromSchema<Responses['SnapshotRemoved']>;
export type ApiModerationAuditPage = FromSchema<Responses['ModerationAuditPage']>;
export type ApiShareLink = FromSchema<Responses['ShareLink']>;
export type ApiSharePreview = FromSchema<Responses['SharePreview']>;
export type ApiSavedToLibrary = FromSchema<Responses['SavedToLibrary']>;
