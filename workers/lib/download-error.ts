/**
 * Why a download failed, and whether a retry could help: the one error safe downloads throw, shared
 * by the request layer (pinned-request.ts) and the download itself (safe-fetch.ts).
 */

export type DownloadFailure =
  | 'bad_url'
  | 'private_address'
  | 'http_status'
  | 'too_large'
  | 'timeout'
  | 'content_type'
  | 'network'
  | 'too_many_redirects'
  | 'aborted'
  | 'bad_body';

const RETRYABLE: Record<DownloadFailure, boolean> = {
  bad_url: false,
  private_address: false,
  http_status: false,
  too_large: false,
  timeout: true,
  content_type: false,
  network: true,
  too_many_redirects: false,
  // Our own caller gave up (usually a worker shutting down); the job deserves another go.
  aborted: true,
  bad_body: false,
};

/** Statuses worth retrying: the server may answer differently later. */
function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** Why a download failed, whether a retry could help, and which URL it was. */
export class DownloadError extends Error {
  override name = 'DownloadError';
  readonly status?: number;
  readonly retryable: boolean;

  constructor(
    readonly reason: DownloadFailure,
    readonly url: string,
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.status !== undefined) this.status = options.status;
    this.retryable = reason === 'http_status' && options.status !== undefined ? retryableStatus(options.status) : RETRYABLE[reason];
  }
}
