/**
 * The one place the environment is read. Every process calls {@link loadConfig} once at start
 * and passes the result down; nothing else reads `process.env`. The one variable outside the
 * configuration, {@link STOP_WITH_PARENT_ENV}, is read here too ({@link stopsWithParent}).
 */

export type NodeEnv = 'development' | 'test' | 'production';
export type QueueBackend = 'redis' | 'postgres';

export interface Config {
  nodeEnv: NodeEnv;
  port: number;
  /** Where users reach the app (`PUBLIC_BASE_URL`, no trailing slash): share links are built on it. */
  publicBaseUrl: string;
  databaseUrl: string;
  /** Postgres connections each web process may hold (`DATABASE_POOL_MAX`). */
  databasePoolMax: number;
  /** `redis://` or `rediss://` for one Redis; `redis-cluster://` or `rediss-cluster://h1:p1,h2:p2` for a Redis Cluster (see {@link parseRedisUrl}). */
  redisUrl: string;
  /**
   * Base of the BullMQ key prefixes (`showrunner`): each queue gets a Redis Cluster hash tag of its
   * own, `{showrunner:<queue>}` (workers/queues/contracts.ts `queueKeyPrefix`), so queues spread over shards.
   */
  queuePrefix: string;
  /**
   * Where the jobs live (`QUEUE_BACKEND`): `redis` (the default; REDIS_URL) or `postgres` (BullMQ's
   * PostgreSQL backend, in the `bullmq` schema of DATABASE_URL's database; docs/operations.md).
   */
  queueBackend: QueueBackend;
  azureStorageConnectionString: string;
  blobContainers: { thumbnails: string; snapshots: string };
  /** Newest first: the first signs new cookies, every one verifies (key rotation). */
  sessionSecrets: string[];
  sessionMaxAgeMs: number;
  /**
   * How many proxies stand in front of the app (`TRUST_PROXY`; `true` reads as 1): 0 trusts no
   * `X-Forwarded-*` header; n takes the client address from the last n `X-Forwarded-For` entries
   * (Koa's `maxIpsCount`), so it is the one the nearest trusted proxy appended, never one the client wrote.
   */
  trustProxy: number;
  redditBaseUrl: string;
  /** Tests only: refused in production (downloads could reach internal services). */
  mediaAllowPrivateHosts: boolean;
  mediaMaxBytes: number;
  /**
   * `PASSWORD_SCRYPT_COST`: log2 of scrypt's N for new password hashes (17, OWASP's current
   * recommendation, about 128 MiB and a few hundred ms per hash); below 17 refused in production.
   * A login with a weaker stored hash re-hashes it at this cost.
   */
  passwordScryptCost: number;
  workerConcurrency: number;
  /** Web processes `server/main.ts` runs, sharing `PORT` (node:cluster); 1 = this process serves. */
  webConcurrency: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logPretty: boolean;
  captionThemes: string[];
  /**
   * Login limits (`server/auth-limits.ts`), each attempt counted before its password is checked:
   * `maxFailures` per address per `windowMs` (the reference: 5 per 15 min), `dailyMaxFailures` per
   * address per day, and `accountMaxFailures` consecutive failures per account, which then lock its
   * logins for `windowMs`. A successful login gives its attempt back and clears the account's count.
   */
  loginRateLimit: { maxFailures: number; windowMs: number; dailyMaxFailures: number; accountMaxFailures: number };
  /** Registrations per client address per hour (`REGISTER_RATE_LIMIT`); 0 turns the limit off. */
  registerRateLimit: number;
  /**
   * The API-wide limit on `/api/sessions*`, `/api/shared*` and `/api/community*` (by user, else by
   * address), counted in Redis across web processes: `points` requests per `windowSeconds`; 0 turns it off.
   */
  apiRateLimit: { points: number; windowSeconds: number };
  bodyLimitBytes: number;
  /** Largest input image sharp will decode (width × height), against decompression bombs. */
  mediaMaxPixels: number;
  jobs: {
    /** First retry delay of a failed job; doubles each attempt (`workers/queues/retry-policy.ts`). */
    backoffMs: number;
    /** Longest wait between two attempts of a job. */
    maxBackoffMs: number;
    /** A transiently failing job keeps retrying until its waits add up to this, then fails for good. */
    retryHorizonMs: number;
    /** Parallel media copies inside one snapshot job. */
    snapshotCopyParallelism: number;
    /**
     * How long a worker's hold on a job lasts without renewal (renewed at half that), and how often
     * workers look for jobs whose holder died: a crashed worker's job runs again after about 1-2× this.
     */
    lockDurationMs: number;
    /** Times a job may be recovered from a dead worker before it is failed (a job that keeps killing workers). */
    maxStalledCount: number;
  };
  outbox: {
    pollIntervalMs: number;
    maxBackoffMs: number;
    batchSize: number;
    /**
     * A dispatched row not finished this long after its dispatch is checked against Redis, and
     * dispatched again if Redis no longer has its job (`workers/outbox/reconciler.ts`).
     */
    reconcileAfterMs: number;
    /** How often each worker process runs a reconcile pass. */
    reconcileIntervalMs: number;
  };
  /** Scheduled housekeeping on the `maintenance` queue (`workers/processors/maintenance.ts`). */
  maintenance: {
    /** How often each task runs, once across all worker processes. */
    intervalMs: number;
    /** Finished outbox rows are deleted this many days after they finished. */
    outboxRetentionDays: number;
    /** Rows per DELETE statement: each batch is its own short statement. */
    batchSize: number;
    /**
     * A durable blob nothing references is deleted by the `durable-blobs` task once it has been
     * unreferenced this long (`MEDIA_GC_GRACE_MINUTES`): a copy or save in flight has that long to reference it.
     */
    mediaGcGraceMinutes: number;
  };
  /** How long SIGTERM waits for in-flight requests and jobs before giving up on them. */
  shutdownGraceMs: number;
  /** bull-board without retry/promote/clean/remove. */
  dashboardReadOnly: boolean;
  /** Port of the web's /metrics, on a listener of its own (`METRICS_PORT`; 0: not served). */
  metricsPort: number;
  /** Port of a worker process's own /metrics (0: none). */
  workerMetricsPort: number;
  /** Address the metrics listeners (web and worker) bind to: loopback unless an operator opens it. */
  metricsHost: string;
  /**
   * The deadline of every call to a dependency: past it the call is ended and the connection it used
   * is destroyed, so a peer that goes silent holds no request and no job slot (docs/architecture.md).
   */
  bounds: Bounds;
  /** Where `npm run dev`'s Azurite keeps its blobs (`DEV_AZURITE_LOCATION`): a folder, or null for memory. */
  devAzuriteLocation: string | null;
  /** Where the PostgreSQL that `npm run dev` starts when none answers keeps its data (`DEV_POSTGRES_LOCATION`). */
  devPostgresLocation: string;
}

/** The per-call deadlines of {@link Config.bounds}, in milliseconds. */
export interface Bounds {
  /** One blob storage operation (upload, download, delete, list, properties), its retries included. */
  storageMs: number;
  /** One PostgreSQL statement as the client waits for it; the connection is destroyed past it. */
  databaseQueryMs: number;
  /** PostgreSQL's own `statement_timeout` on the web's connections (0: none). */
  databaseStatementMs: number;
  /** Opening one PostgreSQL connection. */
  databaseConnectMs: number;
  /** One non-blocking Redis command (producers, the workers' command connections). */
  redisCommandMs: number;
  /** The API rate limit's Redis lookup; past it the per-process count answers. */
  rateLimitMs: number;
}

/** A configuration problem; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Azurite's published development account; safe to ship, it only works against the emulator. */
export const AZURITE_DEV_CONNECTION_STRING =
  'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;' +
  'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;' +
  'BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;';

const DEV_SESSION_SECRET = 'showrunner-development-secret-not-for-production';
const DEFAULT_CAPTION_THEMES = ['joi', 'forced-bi', 'beta', 'cbt', 'cuckold', 'custom'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function str(env: Env, name: string, fallback: string): string {
  return read(env, name) ?? fallback;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

/** `TRUST_PROXY`: a number of proxies; `true`/`false` (the older spelling) read as 1 and 0. */
function proxyCount(env: Env): number {
  const raw = read(env, 'TRUST_PROXY');
  if (raw !== undefined && /^(true|yes)$/i.test(raw)) return 1;
  if (raw !== undefined && /^(false|no)$/i.test(raw)) return 0;
  return int(env, 'TRUST_PROXY', 0, 0, 16);
}

function url(env: Env, name: string, fallback: string, protocols: string[]): string {
  const raw = str(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return raw;
}

/** Where Redis is: one server, or a cluster's seed nodes (any few masters; ioredis discovers the rest). */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean };

const CLUSTER_URL = /^(rediss?)-cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)\/?$/;

/**
 * Reads `REDIS_URL`: `redis://` / `rediss://` name one Redis; `redis-cluster://[user:password@]h1:p1,h2:p2`
 * (`rediss-cluster://` for TLS) names a Redis Cluster by seed nodes, the credentials applying to every node.
 * Throws {@link ConfigError} for a malformed value.
 */
export function parseRedisUrl(raw: string): RedisTarget {
  const cluster = CLUSTER_URL.exec(raw);
  if (!cluster) {
    if (/^rediss?-cluster:/.test(raw)) throw new ConfigError('REDIS_URL', 'a cluster URL is redis-cluster://[user:password@]host:port,host:port (no database, no query)');
    url({ REDIS_URL: raw }, 'REDIS_URL', raw, ['redis:', 'rediss:']);
    return { kind: 'single', url: raw };
  }
  const [, scheme, userinfo, hostList] = cluster as unknown as [string, string, string | undefined, string];
  const nodes = hostList.split(',').map((entry) => {
    const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(entry.trim());
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) throw new ConfigError('REDIS_URL', `cluster node "${entry}" is not host:port`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });
  const [user, ...rest] = (userinfo ?? '').split(':');
  const password = rest.length ? decodeURIComponent(rest.join(':')) : undefined;
  return {
    kind: 'cluster',
    nodes,
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(password ? { password } : {}),
    tls: scheme === 'rediss',
  };
}

function list(env: Env, name: string, fallback: string[]): string[] {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new ConfigError(name, 'must list at least one value');
  return items;
}

function containerName(env: Env, name: string, fallback: string): string {
  const value = str(env, name, fallback);
  // Azure's container naming rule: 3-63 chars, lowercase letters, digits and single hyphens.
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(value)) {
    throw new ConfigError(name, `"${value}" is not a valid blob container name (3-63 chars: a-z, 0-9, -)`);
  }
  return value;
}

/**
 * Reads and validates the configuration. Throws {@link ConfigError} naming the first bad variable;
 * the caller (a process entry point) decides to exit.
 */
/**
 * Set to "1" by a parent that starts this process with an IPC channel (`npm run dev`) to say: when
 * the channel closes, I am gone, stop gracefully rather than run on unsupervised. Not an operator's
 * setting (so not in the configuration table): a parent sets it for its child.
 */
export const STOP_WITH_PARENT_ENV = 'SHOWRUNNER_STOP_WITH_PARENT';

/** Whether the parent asked this process to stop with it ({@link STOP_WITH_PARENT_ENV}); read before the configuration is. */
export function stopsWithParent(env: Env = process.env): boolean {
  return env[STOP_WITH_PARENT_ENV] === '1';
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnvRaw = str(env, 'NODE_ENV', 'development');
  if (!['development', 'test', 'production'].includes(nodeEnvRaw)) {
    throw new ConfigError('NODE_ENV', `expected development, test or production, got "${nodeEnvRaw}"`);
  }
  const nodeEnv = nodeEnvRaw as NodeEnv;

  const secretsRaw = read(env, 'SESSION_SECRET');
  if (secretsRaw === undefined && nodeEnv === 'production') {
    throw new ConfigError('SESSION_SECRET', 'is required in production (a comma list rotates keys, newest first)');
  }
  const sessionSecrets = secretsRaw === undefined ? [DEV_SESSION_SECRET] : list(env, 'SESSION_SECRET', []);
  for (const secret of sessionSecrets) {
    if (nodeEnv === 'production' && secret.length < 32) {
      throw new ConfigError('SESSION_SECRET', 'each secret must be at least 32 characters in production');
    }
  }

  const logLevel = str(env, 'LOG_LEVEL', nodeEnv === 'test' ? 'silent' : 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  const redisUrl = str(env, 'REDIS_URL', 'redis://127.0.0.1:6379');
  parseRedisUrl(redisUrl);

  const prefix = str(env, 'QUEUE_PREFIX', 'showrunner');
  if (!/^[A-Za-z0-9:_-]{1,64}$/.test(prefix)) {
    throw new ConfigError('QUEUE_PREFIX', 'use 1-64 characters from A-Z a-z 0-9 : _ -');
  }

  const queueBackend = str(env, 'QUEUE_BACKEND', 'redis');
  if (queueBackend !== 'redis' && queueBackend !== 'postgres') throw new ConfigError('QUEUE_BACKEND', `expected redis or postgres, got "${queueBackend}"`);

  const connectionString = str(env, 'AZURE_STORAGE_CONNECTION_STRING', AZURITE_DEV_CONNECTION_STRING);
  if (!/AccountName=|BlobEndpoint=|UseDevelopmentStorage=true/i.test(connectionString)) {
    throw new ConfigError('AZURE_STORAGE_CONNECTION_STRING', 'is not an Azure Storage connection string');
  }

  // Downloads reaching loopback and private addresses are for tests against local fixtures only:
  // in production they would let a hostile listing or thumbnail URL reach internal services.
  const mediaAllowPrivateHosts = bool(env, 'MEDIA_ALLOW_PRIVATE_HOSTS', false);
  if (mediaAllowPrivateHosts && nodeEnv === 'production') {
    throw new ConfigError('MEDIA_ALLOW_PRIVATE_HOSTS', 'must not be true in production: it lets downloads reach loopback and private addresses (tests only)');
  }
  const passwordScryptCost = int(env, 'PASSWORD_SCRYPT_COST', 17, 4, 20);
  if (nodeEnv === 'production' && passwordScryptCost < 17) {
    throw new ConfigError('PASSWORD_SCRYPT_COST', `must be at least 17 in production (N = 2^17, OWASP's current minimum for scrypt), got ${passwordScryptCost}`);
  }

  const port = int(env, 'PORT', 3000, 0, 65535);
  const publicBaseUrl = url(env, 'PUBLIC_BASE_URL', `http://localhost:${port}`, ['http:', 'https:']).replace(/\/+$/, '');
  if (/[?#]/.test(publicBaseUrl)) throw new ConfigError('PUBLIC_BASE_URL', 'must be a base URL without query or fragment');

  const backoffMs = int(env, 'JOB_BACKOFF_MS', 2_000, 1, 3_600_000);
  const maxBackoffMs = int(env, 'JOB_MAX_BACKOFF_MS', 10 * 60_000, 1, 24 * 3600_000);
  if (maxBackoffMs < backoffMs) throw new ConfigError('JOB_MAX_BACKOFF_MS', `must be at least JOB_BACKOFF_MS (${backoffMs}), got ${maxBackoffMs}`);

  // Above the default job lock (30 s), so a healthy job is normally finished before anyone asks
  // Redis about it; the reconciler never re-runs a job Redis still has, whatever this is.
  const reconcileAfterMs = int(env, 'OUTBOX_RECONCILE_AFTER_MS', 120_000, 100, 7 * 24 * 3600_000);
  // A quarter of the age by default: a lost job is found at worst about 1.25 × the age after its dispatch.
  const reconcileIntervalMs = int(env, 'OUTBOX_RECONCILE_INTERVAL_MS', Math.max(100, Math.round(reconcileAfterMs / 4)), 100, 24 * 3600_000);

  return {
    nodeEnv,
    port,
    publicBaseUrl,
    databaseUrl: url(env, 'DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/showrunner', ['postgres:', 'postgresql:']),
    databasePoolMax: int(env, 'DATABASE_POOL_MAX', 10, 1, 1000),
    redisUrl,
    queuePrefix: prefix,
    queueBackend,
    azureStorageConnectionString: connectionString,
    blobContainers: {
      thumbnails: containerName(env, 'BLOB_CONTAINER_THUMBNAILS', 'thumbnails'),
      snapshots: containerName(env, 'BLOB_CONTAINER_SNAPSHOTS', 'community'),
    },
    sessionSecrets,
    sessionMaxAgeMs: int(env, 'SESSION_MAX_AGE_HOURS', 24 * 7, 1, 24 * 365) * 3600_000,
    trustProxy: proxyCount(env),
    redditBaseUrl: url(env, 'REDDIT_BASE_URL', 'https://www.reddit.com', ['http:', 'https:']).replace(/\/+$/, ''),
    mediaAllowPrivateHosts,
    passwordScryptCost,
    mediaMaxBytes: int(env, 'MEDIA_MAX_BYTES', 25 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    workerConcurrency: int(env, 'WORKER_CONCURRENCY', 4, 1, 256),
    webConcurrency: int(env, 'WEB_CONCURRENCY', 1, 1, 64),
    logLevel: logLevel as Config['logLevel'],
    logPretty: bool(env, 'LOG_PRETTY', nodeEnv === 'development'),
    captionThemes: list(env, 'CAPTION_THEMES', DEFAULT_CAPTION_THEMES),
    loginRateLimit: {
      maxFailures: int(env, 'LOGIN_MAX_FAILURES', 5, 1, 10_000),
      windowMs: int(env, 'LOGIN_WINDOW_SECONDS', 15 * 60, 1, 24 * 3600) * 1000,
      dailyMaxFailures: int(env, 'LOGIN_DAILY_MAX_FAILURES', 100, 1, 1_000_000),
      accountMaxFailures: int(env, 'LOGIN_ACCOUNT_MAX_FAILURES', 10, 1, 10_000),
    },
    registerRateLimit: int(env, 'REGISTER_RATE_LIMIT', 10, 0, 1_000_000),
    apiRateLimit: {
      points: int(env, 'API_RATE_LIMIT', 100, 0, 1_000_000),
      windowSeconds: int(env, 'API_RATE_LIMIT_WINDOW_SECONDS', 15 * 60, 1, 24 * 3600),
    },
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 100 * 1024, 1024, 10 * 1024 * 1024),
    mediaMaxPixels: int(env, 'MEDIA_MAX_PIXELS', 40_000_000, 1, 1_000_000_000),
    jobs: {
      backoffMs,
      maxBackoffMs,
      retryHorizonMs: int(env, 'JOB_RETRY_HORIZON_MS', 6 * 3600_000, 0, 30 * 24 * 3600_000),
      snapshotCopyParallelism: int(env, 'SNAPSHOT_COPY_PARALLELISM', 4, 1, 64),
      lockDurationMs: int(env, 'JOB_LOCK_DURATION_MS', 30_000, 1_000, 600_000),
      maxStalledCount: int(env, 'JOB_MAX_STALLED_COUNT', 5, 0, 1_000),
    },
    outbox: {
      pollIntervalMs: int(env, 'OUTBOX_POLL_INTERVAL_MS', 5_000, 10, 3_600_000),
      maxBackoffMs: int(env, 'OUTBOX_MAX_BACKOFF_MS', 30_000, 10, 3_600_000),
      batchSize: int(env, 'OUTBOX_BATCH_SIZE', 200, 1, 10_000),
      reconcileAfterMs,
      reconcileIntervalMs,
    },
    maintenance: {
      intervalMs: int(env, 'MAINTENANCE_INTERVAL_MS', 3600_000, 100, 7 * 24 * 3600_000),
      outboxRetentionDays: int(env, 'OUTBOX_RETENTION_DAYS', 7, 0, 3650),
      batchSize: int(env, 'MAINTENANCE_BATCH_SIZE', 5_000, 1, 100_000),
      mediaGcGraceMinutes: int(env, 'MEDIA_GC_GRACE_MINUTES', 60, 0, 30 * 24 * 60),
    },
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 25_000, 0, 600_000),
    dashboardReadOnly: bool(env, 'DASHBOARD_READ_ONLY', false),
    metricsPort: int(env, 'METRICS_PORT', 0, 0, 65535),
    workerMetricsPort: int(env, 'WORKER_METRICS_PORT', 0, 0, 65535),
    metricsHost: str(env, 'METRICS_HOST', '127.0.0.1'),
    bounds: readBounds(env),
    devAzuriteLocation: devAzuriteLocation(env),
    devPostgresLocation: str(env, 'DEV_POSTGRES_LOCATION', '.data/postgres'),
  };
}

function readBounds(env: Env): Bounds {
  const databaseStatementMs = int(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5_000, 0, 3_600_000);
  const databaseQueryMs = int(env, 'DATABASE_QUERY_TIMEOUT_MS', 10_000, 100, 3_600_000);
  // The server's own timeout must end a slow statement first: it cancels the statement and keeps the
  // connection, where the client's deadline has to destroy it.
  if (databaseStatementMs > 0 && databaseQueryMs <= databaseStatementMs) {
    throw new ConfigError('DATABASE_QUERY_TIMEOUT_MS', `must be above DATABASE_STATEMENT_TIMEOUT_MS (${databaseStatementMs}), got ${databaseQueryMs}`);
  }
  return {
    storageMs: int(env, 'STORAGE_TIMEOUT_MS', 30_000, 100, 3_600_000),
    databaseQueryMs,
    databaseStatementMs,
    databaseConnectMs: int(env, 'DATABASE_CONNECT_TIMEOUT_MS', 5_000, 100, 600_000),
    redisCommandMs: int(env, 'REDIS_COMMAND_TIMEOUT_MS', 5_000, 100, 600_000),
    rateLimitMs: int(env, 'API_RATE_LIMIT_TIMEOUT_MS', 500, 10, 60_000),
  };
}

/** `DEV_AZURITE_LOCATION`: `.data/azurite` by default (relative to the repository), `memory` for none. */
function devAzuriteLocation(env: Env): string | null {
  const raw = str(env, 'DEV_AZURITE_LOCATION', '.data/azurite');
  return raw === 'memory' ? null : raw;
}

/** The config with secrets masked, fit for a start-up log line. */
export function describeConfig(config: Config): Record<string, unknown> {
  const mask = (u: string): string => {
    try {
      const parsed = new URL(u);
      if (parsed.password) parsed.password = '***';
      return parsed.toString();
    } catch {
      return '***';
    }
  };
  return {
    ...config,
    databaseUrl: mask(config.databaseUrl),
    // A cluster URL is not a WHATWG URL (several hosts): its password is masked by pattern.
    redisUrl: parseRedisUrl(config.redisUrl).kind === 'cluster' ? config.redisUrl.replace(/^([^:]+:\/\/[^:@/]*:)[^@]*@/, '$1***@') : mask(config.redisUrl),
    azureStorageConnectionString: config.azureStorageConnectionString.replace(/(AccountKey|SharedAccessSignature)=[^;]*/gi, '$1=***'),
    sessionSecrets: config.sessionSecrets.map(() => '***'),
  };
}
