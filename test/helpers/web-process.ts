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
