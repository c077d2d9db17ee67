// The bench's bare HTTP server (bare-http.ts): node:http alone, answering every request with BARE_BODY.
import cluster from 'node:cluster';
import http from 'node:http';

const body = process.env.BARE_BODY ?? '{}';
if (cluster.isPrimary) {
  const count = Number(process.env.BARE_PROCESSES ?? 1);
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    if (++listening === count) process.send?.(address.port);
  });
  for (let i = 0; i < count; i++) cluster.fork();
  process.on('disconnect', () => process.exit(0));
} else {
  process.on('disconnect', () => process.exit(0));
  http
    .createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    })
    .listen(0, process.env.BARE_HOST);
}
