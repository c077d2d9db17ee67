import { outboxStatus } from '../workers/index.js';
import { parseCli, runScript, scriptContext } from './lib/cli.js';

const HELP = `Usage: npm run outbox:status -- [--json] [--errors <n>]

Shows the outbox: rows not yet dispatched to Redis, the age of the oldest, and recent dispatch errors;
rows dispatched but not finished, the age of the oldest, and dispatches the reconciler added.
  --json         machine-readable output
  --errors <n>   how many recent errors to show (default 10)
  --help         this help
Exits 1 when rows are failing to dispatch.`;

runScript(async () => {
  const args = parseCli(HELP, { json: { type: 'boolean' }, errors: { type: 'string' } });
  const ctx = scriptContext('outbox-status');
  try {
    const status = await outboxStatus(ctx.knex, Number(args.errors ?? 10));
    if (args.json) {
      console.log(JSON.stringify(status, null, 2));
    } else {
      console.log(`backlog:        ${status.backlog} undispatched row(s)`);
      console.log(`oldest:         ${status.oldestAgeSeconds === null ? '-' : `${status.oldestAgeSeconds.toFixed(1)} s old (${status.oldestUndispatchedAt?.toISOString()})`}`);
      console.log(`failing:        ${status.failing} row(s) with a dispatch error`);
      console.log(`unfinished:     ${status.unfinished} dispatched row(s) whose job has not finished`);
      console.log(`oldest running: ${status.oldestUnfinishedAgeSeconds === null ? '-' : `${status.oldestUnfinishedAgeSeconds.toFixed(1)} s since dispatch`}`);
      console.log(`redispatched:   ${status.redispatched} dispatch(es) again because Redis had lost the job`);
      for (const e of status.recentErrors) {
        console.log(`  #${e.id} ${e.queue}:${e.jobName} attempts ${e.attempts}, next try ${e.nextAttemptAt.toISOString()}: ${e.lastError}`);
      }
    }
    return status.failing > 0 ? 1 : 0;
  } finally {
    await ctx.close();
  }
});
