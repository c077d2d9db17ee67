import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { AppControllerRoute, AppViewRoute } from '@bull-board/api/typings/app';
import type { Middleware } from 'koa';
import { QUEUE_NAMES, type JobProducer } from '../workers/index.js';
import { MODERATION_PAGE_PATH } from './moderation-page.js';
import type { RouteInfo } from './routing.js';

export const DASHBOARD_PATH = '/admin/queues';

/** bull-board's Koa adapter, noting the routes it is given so the app's route table lists them. */
class RecordingKoaAdapter extends KoaAdapter {
  readonly routes: RouteInfo[] = [];

  private record(method: string | string[], route: string | string[]): void {
    for (const m of [method].flat()) {
      for (const r of [route].flat()) this.routes.push({ method: m.toUpperCase(), path: `${DASHBOARD_PATH}${r === '/' ? '' : r}`, access: 'admin', rateLimited: false });
    }
  }

  override setEntryRoute(route: AppViewRoute): KoaAdapter {
    this.record(route.method, route.route);
    return super.setEntryRoute(route);
  }

  override setApiRoutes(routes: AppControllerRoute[]): KoaAdapter {
    for (const r of routes) this.record(r.method, r.route);
    return super.setApiRoutes(routes);
  }
}

/**
 * bull-board at `/admin/queues`. It is reached only through the app's `/admin` prefix guard
 * (`middleware/guards.ts`: admins only, writes from this origin only), and its routes join the app's
 * route table, so the access and spelling tests cover them like any other.
 */
export function dashboard(queues: JobProducer, options: { readOnly: boolean }): { middleware: Middleware; routes: RouteInfo[] } {
  const serverAdapter = new RecordingKoaAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: QUEUE_NAMES.map((name) => new BullMQAdapter(queues.queues[name], { readOnlyMode: options.readOnly, allowRetries: !options.readOnly })),
    serverAdapter,
    // The bull-board page is bull-board's; this link in its header leads back to the moderation page.
    options: { uiConfig: { boardTitle: 'Showrunner jobs', miscLinks: [{ text: 'Community moderation', url: MODERATION_PAGE_PATH }] } },
  });
  return { middleware: serverAdapter.registerPlugin(), routes: serverAdapter.routes };
}
