import { expect } from 'chai';
import { markDispatched, writeOutboxJobs } from '../db/outbox.js';
import { jobs } from '../workers/index.js';
import { ownTestDatabase } from './helpers/database.js';

describe('outbox rows: the one writer and the dispatch mark', function () {
  this.timeout(60_000);
  const db = ownTestDatabase({ applicationName: 'showrunner-test-outbox-rows' });

  it('writes any number of jobs in one call, each returned with the id of its own row, in order', async () => {
    // 25,000 jobs: three values a row would be 75,000 bindings, past PostgreSQL's 65,535 a statement.
    const written = await db.knex.transaction((trx) =>
      writeOutboxJobs(
        trx,
        Array.from({ length: 25_000 }, (_, i) => (i % 2 === 0 ? jobs.syncMedia(i + 1) : jobs.generateThumbnail(i + 1, i))),
      ),
    );
    expect(written).to.have.length(25_000);
    const rows = await db.knex('job_outbox').orderBy('id').select('id', 'queue', 'job_name', 'payload', 'dispatched_at');
    expect(rows.map((r) => ({ id: r.id, queue: r.queue, name: r.job_name, payload: r.payload }))).to.deep.equal(
      written.map((w) => ({ id: w.id, queue: w.queue, name: w.name, payload: w.payload })),
    );
    expect(written[1]).to.deep.include({ queue: 'thumbnails', name: 'generate', payload: { sessionId: 2, generation: 1 } });
    expect(rows.every((r) => r.dispatched_at === null)).to.equal(true);
  });

  it('marks rows dispatched once: a row marked already keeps its first time and attempt count', async () => {
    const [a, b] = await db.knex.transaction((trx) => writeOutboxJobs(trx, [jobs.syncMedia(1), jobs.syncMedia(2)]));
    await markDispatched(db.knex, [a!.id]);
    const first = await db.knex('job_outbox').where({ id: a!.id }).first('dispatched_at', 'attempts');
    await markDispatched(db.knex, [a!.id, b!.id]);
    const after = await db.knex('job_outbox').whereIn('id', [a!.id, b!.id]).orderBy('id').select('dispatched_at', 'attempts');
    expect(after[0]).to.deep.equal(first);
    expect(after[0]!.attempts).to.equal(1);
    expect(after[1]!.attempts).to.equal(1);
    expect(after[1]!.dispatched_at).to.be.an.instanceOf(Date);
  });
});
