import { findSnapshot } from '../db/snapshots.js';
import type { SnapshotStatus } from '../db/types.js';
import { rerunSnapshots, selectSnapshots } from '../workers/index.js';
import { followJobs, ids, parseCli, queueInChunks, runScript, scriptContext, UsageError } from './lib/cli.js';

const HELP = `Usage: npm run snapshots:rerun -- <selection> [--dry-run] [--wait [--timeout <s>]]

Queues the community snapshot job again for the selected snapshots. Copied media are kept, so a
rerun resumes; failed snapshots go back to pending. Jobs go through the outbox like every job.

Selection (combine freely; a snapshot matching any is taken):
  --snapshot <id>   a snapshot id (repeat, or comma-separate)
  --session <id>    the live snapshot of a session (repeat, or comma-separate)
  --status <s>      every snapshot in state failed, pending or copying (repeat)
  --all             every snapshot
Options:
  --dry-run         list what would be rerun; change nothing
  --wait            follow each job to its end and report its result (exit 1 if any fails)
  --timeout <s>     how long --wait waits (default 600)
  --help            this help`;

const RERUNNABLE: SnapshotStatus[] = ['failed', 'pending', 'copying'];

runScript(async () => {
  const args = parseCli(HELP, {
    snapshot: { type: 'string', multiple: true },
    session: { type: 'string', multiple: true },
    status: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  const statuses = (args.status ?? []).flatMap((s) => s.split(',')).map((s) => s.trim());
  for (const s of statuses) if (!RERUNNABLE.includes(s as SnapshotStatus)) throw new UsageError(`--status takes ${RERUNNABLE.join(', ')}; got "${s}"`);
  const selection = {
    snapshotIds: ids(args.snapshot, 'snapshot'),
    sessionIds: ids(args.session, 'session'),
    statuses: statuses as SnapshotStatus[],
    all: args.all ?? false,
  };
  if (!selection.all && !selection.snapshotIds.length && !selection.sessionIds.length && !selection.statuses.length) {
    throw new UsageError('say which snapshots: --snapshot, --session, --status or --all');
  }
  const timeoutMs = Number(args.timeout ?? 600) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout takes a number of seconds');

  const ctx = scriptContext('snapshots-rerun');
  try {
    const snapshots = await selectSnapshots(ctx.knex, selection);
    if (snapshots.length === 0) {
      console.log('no snapshot matches; nothing to do');
      return 0;
    }
    console.log(`${snapshots.length} snapshot(s) selected`);
    if (args['dry-run']) {
      for (const s of snapshots) console.log(`  would rerun snapshot ${s.id} (session ${s.session_id}, ${s.status}${s.last_error ? `: ${s.last_error}` : ''})`);
      console.log('dry run: nothing changed');
      return 0;
    }
    const reruns = await queueInChunks(ctx, snapshots.map((s) => s.id), 100, (chunk) => rerunSnapshots(ctx.knex, chunk), 'snapshot');
    if (!args.wait) return 0;

    const outcomes = await followJobs(ctx, 'snapshots', reruns.map((r) => r.outboxId), timeoutMs);
    let failed = 0;
    for (const r of reruns) {
      const outcome = outcomes.get(r.outboxId)!;
      const row = await findSnapshot(ctx.knex, r.snapshotId);
      const status = row?.status ?? 'removed';
      if (outcome.state !== 'completed' || (status !== 'ready' && status !== 'removed')) failed += 1;
      const detail = outcome.state === 'failed' ? `: ${outcome.reason}` : outcome.state === 'timeout' ? ': still running at the deadline' : '';
      console.log(`  snapshot ${r.snapshotId}: job ${outcome.state}, snapshot ${status}${detail}`);
    }
    console.log(`summary: ${reruns.length - failed} ready, ${failed} not ready`);
    return failed === 0 ? 0 : 1;
  } finally {
    await ctx.close();
  }
});
