import { COMMUNITY_CONTENT_TYPES, COMMUNITY_SORTS } from '../db/community.js';
import { HTTP_SESSION_COOKIE } from './http-session-cookie.js';
import { QUEUE_NAME, RESPONSE_SCHEMAS, SNAPSHOT_STATUS, type Schemas } from './schemas.js';
import type { RouteInfo } from './routing.js';
import type { JsonSchema } from './validation.js';

type ComponentName = 'CreateSession' | 'PatchSession' | 'Register' | 'Login' | 'LoginRedirect' | 'Moderate' | keyof typeof RESPONSE_SCHEMAS;

const ref = (name: ComponentName): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema): JsonSchema => ({ content: { 'application/json': { schema } } });
const errorResponse = (description: string): JsonSchema => ({ description, ...json(ref('Error')) });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } };
const queryParam = (name: string, schema: JsonSchema): JsonSchema => ({ name, in: 'query', required: false, schema });

const COMMON_ERRORS = {
  '400': errorResponse('Invalid input; `details.fields` lists each failing field with its JSON pointer'),
  '401': errorResponse('Not logged in'),
};

/**
 * The document's schemas: the request schemas that ajv validates and the response schemas the
 * serializers are typed by, under their names. A component that appears inside another (Session in
 * SessionDetail) is written there as a `$ref` to it.
 */
function components(schemas: Schemas): Record<ComponentName, unknown> {
  const named: Record<ComponentName, JsonSchema> = {
    CreateSession: schemas.createSession,
    PatchSession: schemas.patchSession,
    Register: schemas.register,
    Login: schemas.login,
    LoginRedirect: schemas.loginRedirect,
    Moderate: schemas.moderate,
    ...RESPONSE_SCHEMAS,
  };
  const names = Object.keys(named) as ComponentName[];
  const nameOf = new Map<unknown, ComponentName>(names.map((name) => [named[name], name]));
  const withRefs = (value: unknown, root: JsonSchema): unknown => {
    if (Array.isArray(value)) return value.map((v: unknown) => withRefs(v, root));
    if (value === null || typeof value !== 'object') return value;
    const name = nameOf.get(value);
    if (name && value !== root) return ref(name);
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, withRefs(v, root)]));
  };
  return Object.fromEntries(names.map((name) => [name, withRefs(named[name], named[name])])) as Record<ComponentName, unknown>;
}

/**
 * The OpenAPI document, built from the same schemas that validate requests and type responses;
 * `routes` (the app's route table) says which operations the API-wide rate limit counts.
 */
export function buildOpenApi(schemas: Schemas, routes: readonly RouteInfo[]): JsonSchema {
  const limited = new Set(routes.filter((r) => r.rateLimited).map((r) => r.path.replace(/:(\w+)/g, '{$1}')));
  const sessionWrite = (schema: JsonSchema) => ({ required: true, ...json(schema) });
  return {
    openapi: '3.1.0',
    info: { title: 'Showrunner API', version: '1.0.0' },
    components: {
      securitySchemes: { cookie: { type: 'apiKey', in: 'cookie', name: HTTP_SESSION_COOKIE } },
      schemas: components(schemas),
    },
    security: [{ cookie: [] }],
    paths: withRateLimits({
      '/api/auth/register': {
        post: {
          security: [],
          requestBody: sessionWrite(ref('Register')),
          responses: { '201': { description: 'Registered and logged in', ...json(ref('User')) }, '400': COMMON_ERRORS['400'], '409': errorResponse('Email taken') },
        },
      },
      '/api/auth/login': {
        post: {
          security: [],
          requestBody: sessionWrite(ref('Login')),
          responses: {
            '200': { description: 'Logged in; sets the connect.sid cookie', ...json(ref('User')) },
            '401': errorResponse('Invalid email or password'),
            '429': errorResponse('Too many failed attempts from this address'),
          },
        },
      },
      '/api/login': {
        post: {
          security: [],
          description: "The reference's alias of /api/auth/login, for form-style clients: a JSON body or a browser form post",
          requestBody: { required: true, content: { 'application/json': { schema: ref('LoginRedirect') }, 'application/x-www-form-urlencoded': { schema: ref('LoginRedirect') } } },
          responses: {
            '302': {
              description: 'Logged in; sets the connect.sid cookie; Location is `redirect` when it is a same-site path (one leading /), else /',
              headers: { Location: { schema: { type: 'string' } } },
            },
            '400': COMMON_ERRORS['400'],
            '401': errorResponse('Invalid credentials'),
            '429': errorResponse('Too many failed attempts from this address'),
          },
        },
      },
      '/api/auth/logout': { post: { responses: { '200': { description: 'Logged out; the session is revoked' } } } },
      '/api/auth/user': { get: { responses: { '200': { description: 'The current user', ...json(ref('User')) }, '401': COMMON_ERRORS['401'] } } },
      '/api/categories': { get: { security: [], responses: { '200': { description: 'Categories', ...json({ type: 'array', items: ref('Category') }) } } } },
      '/api/sessions': {
        get: {
          parameters: [
            queryParam('categoryId', { type: 'integer' }),
            queryParam('categorySlug', { type: 'string', maxLength: 120 }),
            queryParam('page', { type: 'integer', minimum: 1, default: 1 }),
            queryParam('pageSize', { type: 'integer', minimum: 1, maximum: 1000, description: 'Default 100 when paging (page or pageSize given); without either, every session up to 1,000' }),
          ],
          responses: {
            '200': {
              description: 'Own sessions, newest first; the total is in X-Total-Count, and Link rel="next" names the next page when there is one',
              headers: { 'X-Total-Count': { schema: { type: 'integer' } }, Link: { schema: { type: 'string' }, description: 'RFC 8288: `</api/sessions?page=2&pageSize=1000>; rel="next"`' } },
              ...json({ type: 'array', items: ref('Session') }),
            },
            ...COMMON_ERRORS,
          },
        },
        post: {
          requestBody: sessionWrite(ref('CreateSession')),
          responses: { '201': { description: 'Created', ...json(ref('Session')) }, ...COMMON_ERRORS, '413': errorResponse('Body too large'), '415': errorResponse('Not JSON') },
        },
      },
      '/api/sessions/{id}': {
        parameters: [idParam],
        get: {
          // Reading needs a login, as in the reference; a public session is then readable by any user.
          responses: {
            '200': { description: 'The session and its media', ...json(ref('SessionDetail')) },
            '401': COMMON_ERRORS['401'],
            '404': errorResponse('No such session, or private and not yours'),
          },
        },
        patch: {
          parameters: [{ name: 'If-Match', in: 'header', required: false, schema: { type: 'string' } }],
          requestBody: sessionWrite(ref('PatchSession')),
          responses: {
            '200': { description: 'The committed session; ETag header', ...json(ref('Session')) },
            ...COMMON_ERRORS,
            '404': errorResponse('No such session, or not yours'),
            '412': errorResponse('If-Match is stale'),
            '413': errorResponse('Body too large'),
            '415': errorResponse('Not JSON'),
          },
        },
        delete: { responses: { '204': { description: 'Deleted with its media, snapshot and blobs' }, ...COMMON_ERRORS, '404': errorResponse('No such session, or not yours') } },
      },
      '/api/sessions/{id}/share': {
        parameters: [idParam],
        post: {
          responses: {
            '200': { description: 'The live share link (the same code every time); the session is now public', ...json(ref('ShareLink')) },
            ...COMMON_ERRORS,
            '404': errorResponse('No such session, or not yours'),
          },
        },
        delete: { responses: { '204': { description: 'The share code is revoked (idempotent)' }, ...COMMON_ERRORS, '404': errorResponse('No such session, or not yours') } },
      },
      '/api/shared/{code}/preview': {
        get: {
          security: [],
          parameters: [SHARE_CODE_PARAM],
          responses: {
            '200': { description: 'Title, thumbnail, media count and creator first name, for anyone holding the link', ...json(ref('SharePreview')) },
            '404': errorResponse('Unknown, revoked or malformed code, or the session is no longer public'),
          },
        },
      },
      '/api/shared/{code}': {
        get: {
          parameters: [SHARE_CODE_PARAM],
          responses: {
            '200': { description: 'The shared session and its media, as GET /api/sessions/{id} shows them', ...json(ref('SessionDetail')) },
            '401': COMMON_ERRORS['401'],
            '404': errorResponse('Unknown, revoked or malformed code, or the session is no longer public'),
          },
        },
      },
      '/api/community': {
        get: {
          parameters: [
            queryParam('sort', { type: 'string', enum: COMMUNITY_SORTS, default: 'new' }),
            // The feed holds sessions: the media-only values give an empty page.
            queryParam('contentType', { type: 'string', enum: COMMUNITY_CONTENT_TYPES, default: 'all' }),
            queryParam('search', { type: 'string', maxLength: 200, description: 'A substring of the title or of the creator\'s name' }),
            queryParam('subreddit', { type: 'string', maxLength: 64, description: 'A substring of any of its subreddit names' }),
            queryParam('creator', { type: 'string', maxLength: 100, description: "A substring of the creator's first or last name" }),
            queryParam('creatorId', { type: 'string' }),
            queryParam('categoryId', { type: 'integer' }),
            queryParam('categorySlug', { type: 'string', maxLength: 120 }),
            queryParam('page', { type: 'integer', minimum: 1, default: 1 }),
            queryParam('pageSize', { type: 'integer', minimum: 1, maximum: 100, default: 20 }),
          ],
          responses: { '200': { description: 'A page of ready community snapshots', ...json(ref('CommunityPage')) }, ...COMMON_ERRORS },
        },
      },
      '/api/community/sessions/{snapshotId}': {
        get: {
          parameters: [{ name: 'snapshotId', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
          responses: {
            '200': { description: 'The snapshot with its media at their durable URLs', ...json(ref('CommunityDetail')) },
            '401': COMMON_ERRORS['401'],
            '404': errorResponse('No such ready snapshot'),
          },
        },
      },
      '/api/community/sessions/{snapshotId}/like': {
        parameters: [{ name: 'snapshotId', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
        post: { responses: likeResponses('Liked (idempotent); the like count after it') },
        delete: { responses: likeResponses('Not liked (idempotent); the like count after it') },
      },
      '/api/community/sessions/{snapshotId}/save': {
        parameters: [{ name: 'snapshotId', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
        post: {
          responses: {
            '200': {
              description: "A private copy in the caller's library referencing the item's durable media (no bytes move); saving again gives the same session with reused: true",
              ...json(ref('SavedToLibrary')),
            },
            ...COMMON_ERRORS,
            '404': errorResponse('No such ready, visible snapshot'),
          },
        },
      },
      '/api/admin/overview': {
        get: { responses: { '200': { description: 'Queue counts, outbox backlog and oldest age, snapshots by status', ...json(ref('AdminOverview')) }, ...ADMIN_ERRORS } },
      },
      '/api/admin/snapshots': {
        get: {
          parameters: [
            queryParam('status', SNAPSHOT_STATUS),
            queryParam('page', { type: 'integer', minimum: 1, default: 1 }),
            queryParam('pageSize', { type: 'integer', minimum: 1, maximum: 200, default: 50 }),
          ],
          responses: { '200': { description: 'Snapshots with progress and last error, newest first', ...json(ref('AdminSnapshotPage')) }, ...ADMIN_ERRORS },
        },
      },
      '/api/admin/snapshots/{id}/rerun': {
        parameters: [idParam],
        post: { responses: { '202': { description: 'Snapshot job queued through the outbox', ...json(ref('SnapshotRerunAccepted')) }, ...ADMIN_ERRORS } },
      },
      '/api/admin/sessions/{id}/thumbnail': {
        parameters: [idParam],
        post: {
          responses: {
            '202': { description: 'Thumbnail job queued through the outbox', ...json(ref('ThumbnailAccepted')) },
            '409': errorResponse('Custom thumbnail; add ?force=true'),
            ...ADMIN_ERRORS,
          },
        },
      },
      '/api/admin/queues/{queue}/retry-failed': {
        parameters: [{ name: 'queue', in: 'path', required: true, schema: QUEUE_NAME }],
        post: { responses: { '202': { description: 'Failed jobs retried', ...json(ref('RetryFailedAccepted')) }, ...ADMIN_ERRORS } },
      },
      '/api/admin/community/{id}/hide': moderation('Hidden from the feed for everyone but admins; audited'),
      '/api/admin/community/{id}/unhide': moderation('Back in the feed; audited'),
      '/api/admin/community/{id}': {
        parameters: [idParam],
        delete: {
          requestBody: { required: true, ...json(ref('Moderate')) },
          responses: {
            '200': { description: "Removed: the snapshot row, its blobs by the purge job, the session's shareToCommunity; audited", ...json(ref('SnapshotRemoved')) },
            '400': COMMON_ERRORS['400'],
            ...ADMIN_ERRORS,
          },
        },
      },
      '/api/admin/audit': {
        get: {
          parameters: [queryParam('page', { type: 'integer', minimum: 1, default: 1 }), queryParam('pageSize', { type: 'integer', minimum: 1, maximum: 200, default: 50 })],
          responses: { '200': { description: 'Moderation actions, newest first', ...json(ref('ModerationAuditPage')) }, ...ADMIN_ERRORS },
        },
      },
      '/healthz': { get: { security: [], responses: { '200': { description: 'The process is alive' } } } },
      '/readyz': { get: { security: [], responses: { '200': { description: 'Postgres, Redis and blob storage reachable' }, '503': { description: 'Names what is unreachable' } } } },
    }, (path) => limited.has(path)),
  };
}

const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': { description: 'Requests allowed per window (API_RATE_LIMIT)', schema: { type: 'integer' } },
  'X-RateLimit-Remaining': { description: 'Requests left in this window', schema: { type: 'integer', minimum: 0 } },
  'X-RateLimit-Reset': { description: 'When the window ends (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
};

/** The API-wide limit (middleware/rate-limit.ts): its headers on every response of a limited path, and its 429. */
function withRateLimits(paths: Record<string, JsonSchema>, rateLimited: (path: string) => boolean): Record<string, JsonSchema> {
  for (const [path, item] of Object.entries(paths)) {
    if (!rateLimited(path)) continue;
    for (const operation of Object.values(item)) {
      const responses = (operation as { responses?: Record<string, JsonSchema> }).responses;
      if (!responses) continue;
      for (const [status, response] of Object.entries(responses)) {
        responses[status] = { ...response, headers: { ...(response.headers as JsonSchema | undefined), ...RATE_LIMIT_HEADERS } };
      }
      responses['429'] = {
        description: 'Too many requests in this window (by user, else by address); `retryAfter` and Retry-After in seconds',
        headers: { ...RATE_LIMIT_HEADERS, 'Retry-After': { schema: { type: 'integer' } } },
        ...json(ref('Error')),
      };
    }
  }
  return paths;
}

const SHARE_CODE_PARAM = { name: 'code', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

function likeResponses(description: string): JsonSchema {
  return { '200': { description, ...json(ref('CommunityLike')) }, ...COMMON_ERRORS, '404': errorResponse('No such ready snapshot') };
}

const ADMIN_ERRORS = {
  '401': errorResponse('Not logged in'),
  '403': errorResponse('Not an administrator'),
  '404': errorResponse('No such item'),
};

/** A hide or unhide: `{reason}` in, the item's new state and the audit entry's id out. */
function moderation(description: string): JsonSchema {
  return {
    parameters: [idParam],
    post: {
      requestBody: { required: true, ...json(ref('Moderate')) },
      responses: { '200': { description, ...json(ref('ModerationResult')) }, '400': COMMON_ERRORS['400'], ...ADMIN_ERRORS },
    },
  };
}
