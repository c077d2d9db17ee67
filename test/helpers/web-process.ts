import { freePort, startServiceProcess, type ServiceProcess } from '../../scripts/lib/child-process.js';

export interface WebProcess extends ServiceProcess {
  baseUrl: string;
}

/** `server/main.ts` as its own process (the Procfile's web line), listening on a free port. */
export async function startWebProcess(env: Record<string, string>): Promise<WebProcess> {
  const port = await freePort();
  const proc = await startServiceProcess('server/main.ts', { ...env, PORT: String(port) }, '"web listening"');
  return { ...proc, baseUrl: `http://127.0.0.1:${port}` };
}
