import http from 'node:http';

/** A metrics listener: its port (the one asked for, or the free one picked for 0) and how to stop it. */
export interface MetricsListener {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves Prometheus text at `GET /metrics` on a listener of its own, apart from the API: web and
 * worker processes bind it to `METRICS_HOST` (loopback unless an operator opens it), so what the
 * metrics reveal (routes, queue depths, process details) is never on the public port. Anything
 * else answers 404.
 */
export async function listenMetrics(options: { port: number; host: string }, text: () => Promise<string>, contentType: string): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    text().then(
      (body) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics could not be gathered: ${e.message}`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
