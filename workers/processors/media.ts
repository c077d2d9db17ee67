import type { Job } from 'bullmq';
import type { JobPayload } from '../queues/contracts.js';
import { syncSessionMedia, type SyncOutcome } from '../media/sync.js';
import type { ProcessorDeps } from './deps.js';

/** media:sync — replace the session's media from its subreddits' listing. */
export async function syncMedia(deps: ProcessorDeps, job: Pick<Job<JobPayload<'media', 'sync'>>, 'data'>): Promise<SyncOutcome> {
  return syncSessionMedia(deps, job.data.sessionId);
}
