import type { Middleware } from 'koa';
import { findUserById } from '../../db/users.js';
import type { Knex } from '../../db/knex.js';

/** Puts the logged-in user (if any) on `ctx.state.user`; a login session whose user is gone is dropped. */
export function loadUser(knex: Knex): Middleware {
  return async (ctx, next) => {
    const userId = ctx.session?.userId;
    if (typeof userId === 'string') {
      const loaded = ctx.state.httpSessionUser;
      const user = loaded?.id === userId ? loaded : await findUserById(knex, userId);
      if (user) ctx.state.user = user;
      else ctx.session = null;
    }
    return next();
  };
}
