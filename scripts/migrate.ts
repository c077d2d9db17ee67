import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { ensureDatabase } from '../db/database.js';
import { createKnex } from '../db/knex.js';
import { migrateLatest, rollbackLastBatch } from '../db/migrate.js';
import { seedDemoUser } from '../db/seeds/demo-user.js';
import { coerceError } from '../logger.js';

const HELP = `Usage: npm run migrate [-- --rollback]

Creates the database if it does not exist, applies every pending migration and seeds the categories (and, in development, a demo user).
  --rollback   undo the last batch of migrations instead
  --help       show this help
Reads DATABASE_URL (and NODE_ENV) like every Showrunner process.`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rollback: { type: 'boolean' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const config = loadConfig();
  if (await ensureDatabase(config.databaseUrl)) console.log(`created database ${new URL(config.databaseUrl).pathname.slice(1)}`);
  const knex = createKnex({ databaseUrl: config.databaseUrl, poolMax: 2, applicationName: 'showrunner-migrate' });
  try {
    if (values.rollback) {
      const undone = await rollbackLastBatch(knex);
      console.log(undone.length ? `rolled back: ${undone.join(', ')}` : 'nothing to roll back');
      return;
    }
    const applied = await migrateLatest(knex);
    console.log(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'database is up to date');
    if (config.nodeEnv === 'development') {
      const demo = await seedDemoUser(knex, config.passwordScryptCost);
      if (demo) console.log(`development: demo user ${demo.email} / ${demo.password}`);
    }
  } finally {
    await knex.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(`migrate failed: ${coerceError(e).message}`);
  process.exit(1);
});
