import { startServiceProcess, type ServiceProcess } from '../../scripts/lib/child-process.js';

export type WorkerProcess = ServiceProcess;

/** `workers/main.ts` as its own process (the Procfile's worker line), started. */
export function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  return startServiceProcess('workers/main.ts', env, '"worker started"');
}
