import { regenerateThumbnails, selectThumbnailSessions } from '../workers/index.js';
import { followJobs, ids, parseCli, queueInChunks, runScript, scriptContext, UsageError } from './lib/cli.js';

const HELP = `Usage: npm run thumbnails:regenerate -- <selection> [--include-custom] [--dry-run] [--wait [--timeout <s>]]

Generates the thumbnail of the selected sessions again (a new generation; any job still running
for an older one will not write).

Selection:
  --session <id>     a session id (repeat, or comma-separate)
  --user <userId>    every session of a user (repeat, or comma-separate)
  --all              every session with a generated (auto) thumbnail
Options:
  --include-custom   also replace thumbnails users chose themselves (skipped by default)
  --dry-run          list what would be regenerated; change nothing
  --wait             follow each job to its end and report its result (exit 1 if any fails)
  --timeout <s>      how long --wait waits (default 600)
  --help             this help`;

runScript(async () => {
  const args = parseCli(HELP, {
    session: { type: 'string', multiple: true },
    user: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    'include-custom': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  const selection = {
    sessionIds: ids(args.session, 'session'),
    userIds: (args.user ?? []).flatMap((u) => u.split(',')).map((u) => u.trim()).filter(Boolean),
    allAuto: args.all ?? false,
    includeCustom: args['include-custom'] ?? false,
  };
  if (!selection.allAuto && !selection.sessionIds.length && !selection.userIds.length) {
    throw new UsageError('say which sessions: --session, --user or --all');
  }
  const timeoutMs = Number(args.timeout ?? 600) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout takes a number of seconds');

  const ctx = scriptContext('thumbnails-regenerate');
  try {
    const sessions = await selectThumbnailSessions(ctx.knex, selection);
    if (sessions.length === 0) {
      console.log('no session matches; nothing to do');
      return 0;
    }
    console.log(`${sessions.length} session(s) selected`);
    if (args['dry-run']) {
      for (const s of sessions) console.log(`  would regenerate session ${s.id} (${s.thumbnail_source} thumbnail)`);
      console.log('dry run: nothing changed');
      return 0;
    }
    const regens = await queueInChunks(ctx, sessions.map((s) => s.id), 200, (chunk) => regenerateThumbnails(ctx.knex, chunk), 'thumbnail');
    if (!args.wait) return 0;

    const outcomes = await followJobs(ctx, 'thumbnails', regens.map((r) => r.outboxId), timeoutMs);
    let failed = 0;
    for (const r of regens) {
      const o = outcomes.get(r.outboxId)!;
      if (o.state !== 'completed') failed += 1;
      const detail = o.state === 'completed' ? JSON.stringify(o.result) : o.state === 'failed' ? o.reason : 'still running at the deadline';
      console.log(`  session ${r.sessionId} (generation ${r.generation}): ${o.state} ${detail ?? ''}`);
    }
    console.log(`summary: ${regens.length - failed} done, ${failed} failed or unfinished`);
    return failed === 0 ? 0 : 1;
  } finally {
    await ctx.close();
  }
});
