import { HTTP_SESSION_COOKIE } from './http-session-cookie.js';
import { QUERY_SCHEMAS, QUEUE_NAME, RESPONSE_SCHEMAS, type Schemas } from './schemas.js';
import type { RouteInfo } from './routing.js';
import type { JsonSchema } from './validation.js';

type ComponentName = 'CreateSession' | 'PatchSession' | 'Register' | 'Login' | 'LoginRedirect' | 'Moderate' | keyof typeof RESPONSE_SCHEMAS;

const ref = (name: ComponentName): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema): JsonSchema => ({ content: { 'application/json': { schema } } });
const errorResponse = (description: string): JsonSchema => ({ description, ...json(ref('Error')) });

/**
 * What no schema knows about an operation: its answer when it succeeds, the errors particular to it,
 * and which request schema its body is. The rest is generated: `security` and the 401/403 from the
 * route's access, the parameters from its path and query schema, the 400 from what it validates,
 * the 413/415 from its body, and the rate limit's headers and 429 from the route table.
 */
interface Operation {
  ok: { status: string; description: string; body?: JsonSchema; headers?: JsonSchema };
  description?: string;
  body?: ComponentName;
  /** The body may also come as a browser form post. */
  form?: true;
  errors?: Record<string, string>;
  parameters?: JsonSchema[];
}

const NOT_YOURS = 'No such session, or not yours';
const NO_SNAPSHOT = 'No such ready snapshot';
const BAD_CODE = 'Unknown, revoked or malformed code, or the session is no longer public';
const TOO_MANY_LOGINS = { '429': 'Too many failed attempts from this address' };

/** A hide or unhide: `{reason}` in, the item's new state and the audit entry's id out. */
const moderation = (description: string): Operation => ({ ok: { status: '200', description, body: ref('ModerationResult') }, body: 'Moderate', errors: { '404': 'No such item' } });
const like = (description: string): Operation => ({ ok: { status: '200', description, body: ref('CommunityLike') }, errors: { '404': NO_SNAPSHOT } });

/** The documented operations, by `METHOD /path` as the route table spells it. */
const OPERATIONS: Record<string, Operation> = {
  'POST /api/auth/register': { ok: { status: '201', description: 'Registered and logged in', body: ref('User') }, body: 'Register', errors: { '409': 'Email taken' } },
  'POST /api/auth/login': {
    ok: { status: '200', description: 'Logged in; sets the connect.sid cookie', body: ref('User') },
    body: 'Login',
    errors: { '401': 'Invalid email or password', ...TOO_MANY_LOGINS },
  },
  'POST /api/login': {
    description: "The reference's alias of /api/auth/login, for form-style clients: a JSON body or a browser form post",
    ok: {
      status: '302',
      description: 'Logged in; sets the connect.sid cookie; Location is `redirect` when it is a same-site path (one leading /), else /',
      headers: { Location: { schema: { type: 'string' } } },
    },
    body: 'LoginRedirect',
    form: true,
    errors: { '401': 'Invalid credentials', ...TOO_MANY_LOGINS },
  },
  'POST /api/auth/logout': { ok: { status: '200', description: 'Logged out; the session is revoked' } },
  'GET /api/auth/user': { ok: { status: '200', description: 'The current user', body: ref('User') } },
  'GET /api/categories': { ok: { status: '200', description: 'Categories', body: { type: 'array', items: ref('Category') } } },
  'GET /api/sessions': {
    ok: {
      status: '200',
      description: 'Own sessions, newest first; the total is in X-Total-Count, and Link rel="next" names the next page when there is one',
      headers: { 'X-Total-Count': { schema: { type: 'integer' } }, Link: { schema: { type: 'string' }, description: 'RFC 8288: `</api/sessions?page=2&pageSize=1000>; rel="next"`' } },
      body: { type: 'array', items: ref('Session') },
    },
  },
  'POST /api/sessions': { ok: { status: '201', description: 'Created', body: ref('Session') }, body: 'CreateSession' },
  // Reading needs a login, as in the reference; a public session is then readable by any user.
  'GET /api/sessions/:id': { ok: { status: '200', description: 'The session and its media', body: ref('SessionDetail') }, errors: { '404': 'No such session, or private and not yours' } },
  'PATCH /api/sessions/:id': {
    ok: { status: '200', description: 'The committed session; ETag header', body: ref('Session') },
    body: 'PatchSession',
    parameters: [{ name: 'If-Match', in: 'header', required: false, schema: { type: 'string' } }],
    errors: {
      '403': 'shareToCommunity: true on a session an administrator removed from the community (COMMUNITY_REMOVED, with the reason)',
      '404': NOT_YOURS,
      '412': 'If-Match is stale',
    },
  },
  'DELETE /api/sessions/:id': { ok: { status: '204', description: 'Deleted with its media, snapshot and blobs' }, errors: { '404': NOT_YOURS } },
  'POST /api/sessions/:id/share': {
    ok: { status: '200', description: 'The live share link (the same code every time); the session is now public', body: ref('ShareLink') },
    errors: { '404': NOT_YOURS },
  },
  'DELETE /api/sessions/:id/share': { ok: { status: '204', description: 'The share code is revoked (idempotent)' }, errors: { '404': NOT_YOURS } },
  'GET /api/shared/:code/preview': {
    ok: { status: '200', description: 'Title, thumbnail, media count and creator first name, for anyone holding the link', body: ref('SharePreview') },
    errors: { '404': BAD_CODE },
  },
  'GET /api/shared/:code': {
    ok: { status: '200', description: 'The shared session and its media, as GET /api/sessions/{id} shows them', body: ref('SessionDetail') },
    errors: { '404': BAD_CODE },
  },
  'GET /api/community': { ok: { status: '200', description: 'A page of ready community snapshots', body: ref('CommunityPage') } },
  'GET /api/community/sessions/:snapshotId': {
    ok: { status: '200', description: 'The snapshot with its media at their durable URLs', body: ref('CommunityDetail') },
    errors: { '404': NO_SNAPSHOT },
  },
  'POST /api/community/sessions/:snapshotId/like': like('Liked (idempotent); the like count after it'),
  'DELETE /api/community/sessions/:snapshotId/like': like('Not liked (idempotent); the like count after it'),
  'POST /api/community/sessions/:snapshotId/save': {
    ok: {
      status: '200',
      description: "A private copy in the caller's library referencing the item's durable media (no bytes move); saving again gives the same session with reused: true",
      body: ref('SavedToLibrary'),
    },
    errors: { '404': 'No such ready, visible snapshot' },
  },
  'GET /api/admin/overview': { ok: { status: '200', description: 'Queue counts, outbox backlog and oldest age, snapshots by status', body: ref('AdminOverview') } },
  'GET /api/admin/snapshots': { ok: { status: '200', description: 'Snapshots with progress and last error, newest first', body: ref('AdminSnapshotPage') } },
  'POST /api/admin/snapshots/:id/rerun': {
    ok: { status: '202', description: 'Snapshot job queued through the outbox', body: ref('SnapshotRerunAccepted') },
    errors: { '404': 'No such snapshot' },
  },
  'POST /api/admin/sessions/:id/thumbnail': {
    ok: { status: '202', description: 'Thumbnail job queued through the outbox', body: ref('ThumbnailAccepted') },
    errors: { '404': 'No such session', '409': 'Custom thumbnail; add ?force=true' },
  },
  'POST /api/admin/queues/:queue/retry-failed': {
    ok: { status: '202', description: 'Failed jobs retried', body: ref('RetryFailedAccepted') },
    errors: { '404': 'No such queue', '503': 'Queues are not configured in this process' },
  },
  'POST /api/admin/community/:id/hide': moderation('Hidden from the feed for everyone but admins; audited'),
  'POST /api/admin/community/:id/unhide': moderation('Back in the feed; audited'),
  'DELETE /api/admin/community/:id': {
    ok: { status: '200', description: "Removed: the snapshot row, its blobs by the purge job, the session's shareToCommunity; audited", body: ref('SnapshotRemoved') },
    body: 'Moderate',
    errors: { '404': 'No such item' },
  },
  'POST /api/admin/sessions/:id/community/lift': {
    ok: {
      status: '200',
      description: "Lifts the session's removal (or a hide that outlived its snapshot): the owner may share again; a live hidden snapshot is shown; audited",
      body: ref('ModerationResult'),
    },
    body: 'Moderate',
    errors: { '404': 'No such session', '409': 'The session carries no moderation (NOT_MODERATED)' },
  },
  'GET /api/admin/audit': { ok: { status: '200', description: 'Moderation actions, newest first', body: ref('ModerationAuditPage') } },
  'GET /healthz': { ok: { status: '200', description: 'The process is alive' } },
  'GET /readyz': { ok: { status: '200', description: 'Postgres, Redis and blob storage reachable' }, errors: { '503': 'Names what is unreachable' } },
};

/** The path parameters by name; a malformed integer id is a 400, a malformed share code a 404. */
const PATH_PARAMETERS: Record<string, JsonSchema> = {
  id: { type: 'integer', minimum: 1 },
  snapshotId: { type: 'integer', minimum: 1 },
  code: { type: 'string', format: 'uuid' },
  queue: QUEUE_NAME,
};

const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': { description: 'Requests allowed per window (API_RATE_LIMIT)', schema: { type: 'integer' } },
  'X-RateLimit-Remaining': { description: 'Requests left in this window', schema: { type: 'integer', minimum: 0 } },
  'X-RateLimit-Reset': { description: 'When the window ends (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
};

/** A query schema's properties as OpenAPI parameters: the schema, with its description beside it. */
function queryParameters(schema: JsonSchema | undefined): JsonSchema[] {
  const properties = (schema?.properties ?? {}) as Record<string, JsonSchema>;
  return Object.entries(properties).map(([name, { description, ...property }]) => ({
    name,
    in: 'query',
    required: false,
    ...(description ? { description } : {}),
    schema: property,
  }));
}

/** One operation of the document, from what it states and what its route says. */
function operation(key: string, op: Operation, route: RouteInfo): JsonSchema {
  const pathNames = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  const query = (QUERY_SCHEMAS as Record<string, JsonSchema>)[key];
  const validated = op.body !== undefined || query !== undefined || pathNames.some((name) => PATH_PARAMETERS[name]?.type === 'integer');
  const responses: Record<string, JsonSchema> = {
    [op.ok.status]: { description: op.ok.description, ...(op.ok.headers ? { headers: op.ok.headers } : {}), ...(op.ok.body ? json(op.ok.body) : {}) },
    ...(validated ? { '400': errorResponse('Invalid input; `details.fields` lists each failing field with its JSON pointer') } : {}),
    ...(route.access !== 'public' ? { '401': errorResponse('Not logged in') } : {}),
    ...(route.access === 'admin' ? { '403': errorResponse('Not an administrator') } : {}),
    ...(op.body ? { '413': errorResponse('Body too large'), '415': errorResponse(op.form ? 'Neither JSON nor a form' : 'Not JSON') } : {}),
    ...Object.fromEntries(Object.entries(op.errors ?? {}).map(([status, description]) => [status, errorResponse(description)])),
  };
  if (route.rateLimited) {
    for (const [status, response] of Object.entries(responses)) {
      responses[status] = { ...response, headers: { ...(response.headers as JsonSchema | undefined), ...RATE_LIMIT_HEADERS } };
    }
    responses['429'] = {
      description: 'Too many requests in this window (by user, else by address); `retryAfter` and Retry-After in seconds',
      headers: { ...RATE_LIMIT_HEADERS, 'Retry-After': { schema: { type: 'integer' } } },
      ...json(ref('Error')),
    };
  }
  const parameters = [
    ...pathNames.map((name) => ({ name, in: 'path', required: true, schema: PATH_PARAMETERS[name] })),
    ...queryParameters(query),
    ...(op.parameters ?? []),
  ];
  const body = op.body ? ref(op.body) : undefined;
  return {
    ...(route.access === 'public' ? { security: [] } : {}),
    ...(op.description ? { description: op.description } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body }, ...(op.form ? { 'application/x-www-form-urlencoded': { schema: body } } : {}) } } } : {}),
    responses,
  };
}

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
 * The OpenAPI document, built from the same schemas that validate requests and type responses, and
 * from the app's route table (who may call each operation, and which the API-wide rate limit counts).
 */
export function buildOpenApi(schemas: Schemas, routes: readonly RouteInfo[]): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const [key, op] of Object.entries(OPERATIONS)) {
    const route = routes.find((r) => `${r.method} ${r.path}` === key);
    if (!route) throw new Error(`openapi: ${key} is documented but not routed`);
    const path = route.path.replace(/:(\w+)/g, '{$1}');
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(key, op, route);
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Showrunner API', version: '1.0.0' },
    components: {
      securitySchemes: { cookie: { type: 'apiKey', in: 'cookie', name: HTTP_SESSION_COOKIE } },
      schemas: components(schemas),
    },
    security: [{ cookie: [] }],
    paths,
  };
}
