/**
 * How long a job keeps retrying a transient failure: capped exponential backoff over a horizon.
 * One mechanism, two halves of it: the producer sets each job's `attempts` from {@link attemptsWithin}
 * and the worker's custom backoff strategy waits {@link retryDelayMs} before each retry, both from the
 * same three settings. Permanent failures never reach it (`UnrecoverableError` skips the retries).
 */
export interface RetryPolicy {
  /** Wait before the first retry (`JOB_BACKOFF_MS`); each next one doubles. */
  backoffMs: number;
  /** Longest wait between two attempts (`JOB_MAX_BACKOFF_MS`). */
  maxBackoffMs: number;
  /** Retrying stops once the waits add up to this (`JOB_RETRY_HORIZON_MS`). */
  retryHorizonMs: number;
}

/** The `backoff.type` of every retried job; BullMQ hands it to the worker's `backoffStrategy`. */
export const CAPPED_EXPONENTIAL = 'capped-exponential';

/** The wait before retry `retry` (1 for the first): `backoffMs · 2^(retry-1)`, capped at `maxBackoffMs`. */
export function retryDelayMs(policy: RetryPolicy, retry: number): number {
  // Past 2^40 the product only grows; stopping the exponent there keeps the number finite.
  const exponent = Math.min(Math.max(retry, 1) - 1, 40);
  return Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** exponent);
}

/** Retries until the waits reach the horizon: the first one whose wait makes the sum ≥ the horizon is the last. */
export function retriesWithin(policy: RetryPolicy): number {
  let retries = 0;
  let waited = 0;
  // The doubling part is at most ~40 steps; the capped rest is counted in one division, so a long
  // horizon with a small cap costs nothing.
  while (waited < policy.retryHorizonMs) {
    const delay = retryDelayMs(policy, retries + 1);
    if (delay >= policy.maxBackoffMs) return retries + Math.ceil((policy.retryHorizonMs - waited) / policy.maxBackoffMs);
    waited += delay;
    retries += 1;
  }
  return retries;
}

/** BullMQ's `attempts` for a job under the policy: the first run plus its retries. */
export function attemptsWithin(policy: RetryPolicy): number {
  return 1 + retriesWithin(policy);
}

/**
 * The worker's `settings.backoffStrategy`. BullMQ passes the attempts made so far, counting the one
 * that just failed, so that number is the retry about to be scheduled.
 */
export function cappedBackoffStrategy(policy: RetryPolicy): (attemptsMade: number) => number {
  return (attemptsMade) => retryDelayMs(policy, attemptsMade);
}

/** The policy from `config.jobs`, for building a producer or a worker. */
export function retryPolicyOf(config: { jobs: RetryPolicy }): RetryPolicy {
  const { backoffMs, maxBackoffMs, retryHorizonMs } = config.jobs;
  return { backoffMs, maxBackoffMs, retryHorizonMs };
}
