import { retriesWithin, retryDelayMs, type RetryPolicy } from '../../workers/queues/retry-policy.js';

/** Every wait a job that keeps failing goes through under the policy, in order. */
export function retrySchedule(policy: RetryPolicy): number[] {
  return Array.from({ length: retriesWithin(policy) }, (_, i) => retryDelayMs(policy, i + 1));
}
