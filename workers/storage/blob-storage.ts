import { Readable } from 'node:stream';
import { BlobServiceClient, isRestError, StorageRetryPolicyType, type ContainerClient } from '@azure/storage-blob';

/** One blob as listed. */
export interface BlobInfo {
  name: string;
  size: number;
  contentType?: string;
}

/** How hard a storage call tries before the error reaches the job (which BullMQ then retries). */
export interface BlobStoreOptions {
  /** Attempts per operation, the first included (default 3). */
  maxTries?: number;
  /**
   * Deadline of one whole operation, its attempts included (default 30000, `STORAGE_TIMEOUT_MS`):
   * past it the request is aborted and its socket destroyed, and the operation fails saying so.
   */
  timeoutMs?: number;
  /** First delay between attempts, doubling (default 500; capped by `maxRetryDelayMs`, default 5000). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Whole budget of {@link BlobStore.ping}, a single attempt (default 2000). */
  pingTimeoutMs?: number;
}

/** A storage operation that failed; the message names the operation, container and blob. */
export class BlobStorageError extends Error {
  override name = 'BlobStorageError';
  readonly statusCode?: number;
  readonly code?: string;

  constructor(operation: string, cause: unknown, timedOutAfterMs?: number) {
    const detail = describeFailure(cause);
    super(
      timedOutAfterMs === undefined
        ? `blob storage: ${operation} failed: ${detail.text}`
        : `blob storage: ${operation} timed out after ${timedOutAfterMs / 1000} s`,
      { cause },
    );
    if (detail.statusCode !== undefined) this.statusCode = detail.statusCode;
    if (detail.code !== undefined) this.code = detail.code;
  }
}

function describeFailure(e: unknown): { text: string; statusCode?: number; code?: string } {
  if (isRestError(e)) {
    const code = e.code ?? (e.details as { errorCode?: string } | undefined)?.errorCode;
    // The SDK's message for a 4xx is often an XML blob or empty; status and code are the useful part.
    const message = e.message.split('\n')[0]?.slice(0, 300) ?? '';
    const text = [e.statusCode, code, message].filter((p) => p !== undefined && p !== '').join(' ');
    return { text: text || 'unknown storage error', ...(e.statusCode !== undefined ? { statusCode: e.statusCode } : {}), ...(code ? { code } : {}) };
  }
  if (e instanceof Error) return { text: e.message };
  return { text: String(e) };
}

/** Blob names are `/`-separated paths; each segment is escaped on its own, as the SDK does. */
function escapeName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/**
 * The application's view of Azure Blob Storage (Azurite in development and tests): two containers
 * whose blobs are publicly readable, so a blob's URL is a durable link the API can hand out.
 */
export class BlobStore {
  private constructor(
    private readonly service: BlobServiceClient,
    private readonly probe: BlobServiceClient,
    readonly containers: { thumbnails: string; snapshots: string },
    private readonly pingTimeoutMs: number,
    private readonly timeoutMs: number,
  ) {}

  /** A store for the connection string's account (`AZURE_STORAGE_CONNECTION_STRING`). */
  static fromConnectionString(
    connectionString: string,
    containers: { thumbnails: string; snapshots: string },
    options: BlobStoreOptions = {},
  ): BlobStore {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const service = BlobServiceClient.fromConnectionString(connectionString, {
      retryOptions: {
        retryPolicyType: StorageRetryPolicyType.EXPONENTIAL,
        maxTries: options.maxTries ?? 3,
        // The SDK only sends this to the service as its `timeout` query parameter (whole seconds): the
        // service's own processing budget, which no client timer enforces. A silent network or server
        // never answers it; the deadline in `run` is what ends such a call.
        tryTimeoutInMs: Math.max(1_000, timeoutMs),
        retryDelayInMs: options.retryDelayMs ?? 500,
        maxRetryDelayInMs: options.maxRetryDelayMs ?? 5_000,
      },
    });
    const pingTimeoutMs = options.pingTimeoutMs ?? 2_000;
    // Readiness wants a quick yes or no, not the SDK's retries.
    const probe = BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { maxTries: 1 } });
    return new BlobStore(service, probe, { ...containers }, pingTimeoutMs, timeoutMs);
  }

  private readonly containerClients = new Map<string, ContainerClient>();

  /** One client per container: building one sets up a whole request pipeline. */
  private container(name: string): ContainerClient {
    let client = this.containerClients.get(name);
    if (!client) this.containerClients.set(name, (client = this.service.getContainerClient(name)));
    return client;
  }

  /**
   * Runs one operation under its deadline. The SDK's HTTP client destroys the request's socket when
   * the signal aborts (so a connection that went silent is never reused), and its retry policy does
   * not retry an abort: the operation fails at once, and the job's own retry opens a fresh connection.
   */
  private async run<T>(operation: string, fn: (abortSignal: AbortSignal) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    const deadline = AbortSignal.timeout(timeoutMs);
    try {
      return await fn(deadline);
    } catch (e) {
      throw new BlobStorageError(operation, e, deadline.aborted ? timeoutMs : undefined);
    }
  }

  /**
   * Creates both containers when missing, with anonymous read access to blobs (not to listings).
   * Safe to run concurrently: a container created by someone else in between counts as done.
   */
  async ensureContainers(): Promise<void> {
    const names = [...new Set([this.containers.thumbnails, this.containers.snapshots])];
    await Promise.all(
      names.map((name) =>
        this.run(`create container ${name}`, async (abortSignal) => {
          try {
            await this.container(name).createIfNotExists({ access: 'blob', abortSignal });
          } catch (e) {
            if (isRestError(e) && (e.code === 'PublicAccessNotPermitted' || (e.details as { errorCode?: string } | undefined)?.errorCode === 'PublicAccessNotPermitted')) {
              throw new Error('the storage account forbids public blob access, which durable blob URLs need (allow it on the account)', { cause: e });
            }
            throw e;
          }
        }),
      ),
    );
  }

  /**
   * Writes (or overwrites) a block blob in one request; deterministic names make a rerun replace, not
   * add. The body may be the chunks it was read in: they are streamed as they are (each attempt, if
   * the SDK retries, streams them again), which saves joining them into one copy first.
   */
  async upload(container: string, name: string, body: Buffer | readonly Buffer[], contentType: string): Promise<{ url: string }> {
    const blob = this.container(container).getBlockBlobClient(name);
    await this.run(`upload ${container}/${name}`, (abortSignal) => {
      const options = { blobHTTPHeaders: { blobContentType: contentType }, abortSignal };
      return Buffer.isBuffer(body)
        ? blob.upload(body, body.length, options)
        : blob.upload(() => Readable.from(body, { objectMode: false }), body.reduce((n, c) => n + c.length, 0), options);
    });
    return { url: this.url(container, name) };
  }

  /**
   * Writes (or overwrites) a block blob from a local file, streamed: memory holds the read stream's
   * buffers, not the file. Each attempt (the SDK retries) reads the file again from the start.
   */
  async uploadFile(container: string, name: string, file: string, contentType: string): Promise<{ url: string }> {
    const blob = this.container(container).getBlockBlobClient(name);
    await this.run(`upload ${container}/${name}`, (abortSignal) => blob.uploadFile(file, { blobHTTPHeaders: { blobContentType: contentType }, abortSignal }));
    return { url: this.url(container, name) };
  }

  /** The blob's durable public URL (it need not exist yet). `name` '' gives the container's URL with a trailing slash. */
  url(container: string, name: string): string {
    return `${this.container(container).url.replace(/\/+$/, '')}/${escapeName(name)}`;
  }

  /** The container's URL with a trailing slash, as {@link BlobStore.url} spells it, for the connection string's account (no request). */
  static containerUrl(connectionString: string, container: string): string {
    return `${BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container).url.replace(/\/+$/, '')}/`;
  }

  /** Every blob whose name starts with `prefix`, in name order. */
  async list(container: string, prefix: string): Promise<BlobInfo[]> {
    return this.run(`list ${container}/${prefix}*`, async (abortSignal) => {
      const found: BlobInfo[] = [];
      for await (const item of this.container(container).listBlobsFlat({ prefix, abortSignal })) {
        const contentType = item.properties.contentType;
        found.push({ name: item.name, size: item.properties.contentLength ?? 0, ...(contentType ? { contentType } : {}) });
      }
      return found;
    });
  }

  async download(container: string, name: string): Promise<Buffer> {
    return this.run(`download ${container}/${name}`, (abortSignal) => this.container(container).getBlockBlobClient(name).downloadToBuffer(0, undefined, { abortSignal }));
  }

  /**
   * {@link download} within the bounds a download from a URL gets: refused, before the body is
   * read, when the blob's stored size exceeds `maxBytes` or its stored type is not accepted.
   */
  async downloadWithin(container: string, name: string, bounds: { maxBytes: number; accept: (contentType: string) => boolean }): Promise<{ body: Buffer; contentType: string }> {
    const blob = this.container(container).getBlockBlobClient(name);
    const properties = await this.run(`check ${container}/${name}`, () => blob.getProperties());
    const contentType = (properties.contentType ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase();
    const size = properties.contentLength ?? 0;
    if (size > bounds.maxBytes) throw new BlobStorageError(`download ${container}/${name}`, new Error(`${size} bytes exceeds the limit of ${bounds.maxBytes}`));
    if (!bounds.accept(contentType)) throw new BlobStorageError(`download ${container}/${name}`, new Error(`content type ${contentType} is not accepted here`));
    // Read no more than was checked, whatever was written in between.
    const body = size === 0 ? Buffer.alloc(0) : await this.run(`download ${container}/${name}`, () => blob.downloadToBuffer(0, size));
    return { body, contentType };
  }

  async exists(container: string, name: string): Promise<boolean> {
    return this.run(`check ${container}/${name}`, (abortSignal) => this.container(container).getBlockBlobClient(name).exists({ abortSignal }));
  }

  /**
   * Deletes the blob: `deleted`, or `missing` when there was none (not an error: purges are
   * retried). With `unlessWrittenSince`, the blob is kept when it was written after that time
   * (Azure's If-Unmodified-Since, so the check and the delete are one step on the storage side):
   * `written-since`.
   */
  async deleteBlob(container: string, name: string, options: { unlessWrittenSince?: Date } = {}): Promise<'deleted' | 'missing' | 'written-since'> {
    return this.run(`delete ${container}/${name}`, async (abortSignal) => {
      try {
        const since = options.unlessWrittenSince;
        const result = await this.container(container)
          .getBlockBlobClient(name)
          .deleteIfExists({ deleteSnapshots: 'include', abortSignal, ...(since ? { conditions: { ifUnmodifiedSince: since } } : {}) });
        return result.succeeded ? 'deleted' : 'missing';
      } catch (e) {
        if (options.unlessWrittenSince && isRestError(e) && e.statusCode === 412) return 'written-since';
        throw e;
      }
    });
  }

  /**
   * Deletes every blob under `prefix` and returns how many it deleted (0 on a rerun). An empty
   * prefix is refused: it would empty the whole container.
   */
  async deletePrefix(container: string, prefix: string): Promise<number> {
    if (prefix === '') throw new BlobStorageError(`delete ${container}/*`, new Error('refusing to delete with an empty prefix (the whole container)'));
    const names = (await this.list(container, prefix)).map((b) => b.name);
    let deleted = 0;
    const parallel = 8;
    for (let i = 0; i < names.length; i += parallel) {
      const results = await Promise.all(names.slice(i, i + parallel).map((name) => this.deleteBlob(container, name)));
      deleted += results.filter((r) => r === 'deleted').length;
    }
    return deleted;
  }

  /** One quick request to the account (no retries); throws {@link BlobStorageError} when it does not answer. */
  async ping(): Promise<void> {
    await this.run('ping', (abortSignal) => this.probe.getProperties({ abortSignal }), this.pingTimeoutMs);
  }
}
