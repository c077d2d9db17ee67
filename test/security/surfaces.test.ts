import { expect } from 'chai';
import { pino } from 'pino';
import supertest from 'supertest';
import { loadConfig } from '../../config.js';
import { createApp } from '../../server/app.js';
import { BlobStore } from '../../workers/index.js';
import { createTestApp, testConfig } from '../helpers/app.js';
import { testKnex } from '../helpers/database.js';
import { startWebProcess } from '../helpers/web-process.js';
import { startJobStack } from '../helpers/job-stack.js';

/**
 * What the public port shows: no `/metrics` (it has a listener of its own, on loopback by default),
 * and a `/readyz` that names its checks and says ok or not, never a backend's error text.
 */
describe('security: metrics and readiness', function () {
  this.timeout(60_000);

  it('the API port serves no /metrics, in any spelling', async () => {
    const t = createTestApp();
    for (const path of ['/metrics', '/METRICS', '/Metrics', '/metrics/']) {
      expect((await t.http().get(path)).status, path).to.equal(404);
    }
  });

  it('metrics listen on loopback by default, on METRICS_PORT only when it is set', () => {
    const config = loadConfig({ NODE_ENV: 'test' });
    expect(config.metricsHost).to.equal('127.0.0.1');
    expect(config.metricsPort).to.equal(0);
    expect(loadConfig({ NODE_ENV: 'test', METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5' })).to.deep.include({ metricsPort: 9464, metricsHost: '10.0.0.5' });
  });

  it('a web process serves its metrics on METRICS_PORT, and not on its API port', async () => {
    const stack = await startJobStack();
    try {
      const web = await startWebProcess(stack.env);
      try {
        const metrics = await fetch(web.metricsUrl);
        expect(metrics.status).to.equal(200);
        expect(await metrics.text()).to.match(/^showrunner_outbox_backlog \d+$/m);
        expect((await fetch(`${web.baseUrl}/metrics`)).status).to.equal(404);
      } finally {
        await web.stop();
      }
    } finally {
      await stack.close();
    }
  });

  it('/readyz says which check failed, and nothing of why', async () => {
    // Blob storage that refuses connections: its client's error names the host and port.
    const config = testConfig({ AZURE_STORAGE_CONNECTION_STRING: 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=ZmFrZQ==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;' });
    const blobs = BlobStore.fromConnectionString(config.azureStorageConnectionString, config.blobContainers);
    const app = createApp({ config, knex: testKnex(), logger: pino({ level: 'silent' }), blobs });
    const res = await supertest(app.callback()).get('/readyz');
    expect(res.status).to.equal(503);
    expect(res.body).to.deep.equal({
      status: 'unavailable',
      message: 'Not ready: blobStorage unreachable',
      checks: { postgres: { ok: true }, blobStorage: { ok: false } },
    });
    expect(res.text).to.not.match(/127\.0\.0\.1|ECONNREFUSED|:9\b/);
  });
});
