import { createUser, findUserByEmail } from '../db/users.js';
import { parseCli, runScript, scriptContext, UsageError } from './lib/cli.js';

const HELP = `Usage: npm run users:create -- --email <email> [--first-name <n>] [--last-name <n>] [--admin] [--dry-run]

Creates a user. The password is never taken from the command line (it would stay in shell history):
it is asked for on a terminal, or read from standard input when piped:
  printf '%s\\n' "$PASSWORD" | npm run users:create -- --email ops@example.com --admin
  --admin     give the user the admin role (dashboard and /api/admin)
  --dry-run   check everything (email free, password long enough) and create nothing
  --help      this help`;

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    let data = '';
    for await (const chunk of process.stdin) data += String(chunk);
    return data.replace(/\r?\n$/, '');
  }
  process.stderr.write('Password (not shown): ');
  process.stdin.setRawMode(true);
  process.stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (buf: Buffer): void => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          process.stdin.setRawMode(false);
          process.stdin.pause();
          process.stdin.off('data', onData);
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          process.stdin.setRawMode(false);
          reject(new Error('cancelled'));
          return;
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    process.stdin.on('data', onData);
  });
}

runScript(async () => {
  const args = parseCli(HELP, {
    email: { type: 'string' },
    'first-name': { type: 'string' },
    'last-name': { type: 'string' },
    admin: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  });
  if (!args.email || !/^[^\s@]+@[^\s@]+$/.test(args.email)) throw new UsageError('--email <address> is required');
  const password = await readPassword();
  if (password.length < 8) throw new UsageError('the password must be at least 8 characters');
  const ctx = scriptContext('users-create');
  try {
    if (args['dry-run']) {
      if (await findUserByEmail(ctx.knex, args.email)) {
        console.error(`error: a user with email ${args.email} already exists`);
        return 1;
      }
      console.log(`would create ${args.admin ? 'admin' : 'user'} ${args.email}; dry run: nothing changed`);
      return 0;
    }
    const user = await createUser(ctx.knex, {
      email: args.email,
      password,
      firstName: args['first-name'] ?? null,
      lastName: args['last-name'] ?? null,
      role: args.admin ? 'admin' : 'user',
    }, ctx.config.passwordScryptCost);
    if (!user) {
      console.error(`error: a user with email ${args.email} already exists`);
      return 1;
    }
    console.log(`created ${user.role} ${user.email} (${user.id})`);
    return 0;
  } finally {
    await ctx.close();
  }
});
