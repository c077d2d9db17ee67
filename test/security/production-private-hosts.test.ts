import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../config.js';

/**
 * Issue 22 §5: `MEDIA_ALLOW_PRIVATE_HOSTS=true` lets downloads reach loopback and private addresses
 * (tests against local fixtures need it). Production refuses it at start, naming the variable.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PRODUCTION = { NODE_ENV: 'production', SESSION_SECRET: 'a-production-secret-of-32-characters!' };

/** Starts an entry point as the Procfile does and returns how it ended; it must end by itself. */
async function start(entry: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, entry)], {
    cwd: root,
    // Nothing else of the test's environment: only what a deployment would set.
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stderr };
}

describe('security: production refuses MEDIA_ALLOW_PRIVATE_HOSTS=true', function () {
  this.timeout(60_000);

  it('loadConfig throws a ConfigError naming the variable in production, and only there', () => {
    for (const value of ['true', '1', 'yes', 'TRUE']) {
      let error: unknown;
      try {
        loadConfig({ ...PRODUCTION, MEDIA_ALLOW_PRIVATE_HOSTS: value });
      } catch (e) {
        error = e;
      }
      expect(error, value).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).variable).to.equal('MEDIA_ALLOW_PRIVATE_HOSTS');
      expect((error as ConfigError).message).to.match(/^MEDIA_ALLOW_PRIVATE_HOSTS: .*production/);
    }
    expect(loadConfig({ ...PRODUCTION, MEDIA_ALLOW_PRIVATE_HOSTS: 'false' }).mediaAllowPrivateHosts).to.equal(false);
    expect(loadConfig(PRODUCTION).mediaAllowPrivateHosts).to.equal(false);
    for (const nodeEnv of ['test', 'development']) {
      expect(loadConfig({ NODE_ENV: nodeEnv, MEDIA_ALLOW_PRIVATE_HOSTS: 'true' }).mediaAllowPrivateHosts, nodeEnv).to.equal(true);
    }
  });

  it('the web and the worker process do not start, and say why', async () => {
    for (const entry of ['server/main.ts', 'workers/main.ts']) {
      const { code, stderr } = await start(entry, { ...PRODUCTION, MEDIA_ALLOW_PRIVATE_HOSTS: 'true' });
      expect(code, `${entry}: ${stderr}`).to.equal(1);
      expect(stderr, entry).to.contain('cannot start: MEDIA_ALLOW_PRIVATE_HOSTS');
    }
  });
});
