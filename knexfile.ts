// For the knex CLI (`npx knex --knexfile knexfile.ts migrate:status`); the processes build their own.
import { loadConfig } from './config.js';
import { knexConfig } from './db/knex.js';

export default knexConfig({ databaseUrl: loadConfig().databaseUrl, applicationName: 'showrunner-knex-cli' });
