import { freePort, startServiceProcess, type ServiceProcess } from '../../scripts/lib/child-process.js';

export interface WebProcess extends ServiceProcess {
  baseUrl: string;
  /** Where its `/metrics` listens (`METRICS_PORT`, loopback), apart from the API. */
  metricsUrl: string;
}

/** `server/main.ts` as its own process (the Procfile's web line), listening on a free port, its metrics on another. */
export async function startWebProcess(env: Record<string, string>): Promise<WebProcess> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const proc = await startServiceProcess('server/main.ts', { METRICS_PORT: String(metricsPort), ...env, PORT: String(port) }, '"web listening"');
  return { ...proc, baseUrl: `http://127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

/**
 * The pid of the web process that logged the request with this `X-Request-Id` (its one "request"
 * line, written when it answered), once it has: the way to tell which of several processes
 * (WEB_CONCURRENCY) served what. Searches from the end of the output.
 */
export function servedBy(web: WebProcess, requestId: string): number | undefined {
  const output = web.output();
  const needle = `"requestId":"${requestId}"`;
  for (let at = output.lastIndexOf(needle); at >= 0; at = at === 0 ? -1 : output.lastIndexOf(needle, at - 1)) {
    const line = output.slice(output.lastIndexOf('\n', at) + 1, (output.indexOf('\n', at) + 1 || output.length + 1) - 1);
    if (line.includes('"msg":"request"')) return (JSON.parse(line) as { pid: number }).pid;
  }
  return undefined;
}
