import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/*
 * The HTTP floor of a PATCH: node:http alone, in as many processes as the web runs (node:cluster,
 * as the web shares its port), reading each request's body and answering with a fixed session JSON
 * the size the API sends. No routing, cookie, validation or database: what any Node HTTP service on
 * this machine pays per request, with the bench's autocannon on the same two cores, before it does
 * any work. A PATCH costs at least the raw statements plus this, so it bounds the PATCH ratios.
 * The server is plain JavaScript (bare-http-server.mjs), so nothing but node:http runs in it.
 */
const SERVER = fileURLToPath(new URL('./bare-http-server.mjs', import.meta.url));

export interface BareHttp {
  url: string;
  close(): Promise<void>;
}

/** Starts the bare server on `host` with `processes` processes, answering `body` to every request. */
export async function startBareHttp(host: string, processes: number, body: string): Promise<BareHttp> {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, BARE_BODY: body, BARE_PROCESSES: String(processes), BARE_HOST: host },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [port] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`the bare HTTP server exited (${String(code)}) before it listened`))),
  ])) as [number];
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    async close() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}
