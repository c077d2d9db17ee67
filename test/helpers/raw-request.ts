import http from 'node:http';

/** One HTTP answer with its JSON body (`{unparsed}` when the body is not JSON). */
export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/**
 * One request to a web process on a fresh connection (no keep-alive, so a stuck request cannot
 * hold up the next), with the login cookie; its JSON answer.
 */
export function request(baseUrl: string, method: string, path: string, cookie: string, body?: unknown): Promise<Answer> {
  const { port } = new URL(baseUrl);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: { cookie, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            parsed = { unparsed: text.slice(0, 200) };
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Why `answer` is not the 503 a client can act on (the SERVICE_UNAVAILABLE envelope, a message that
 * says to retry, and a `Retry-After` of a whole number of seconds, at least one), or null when it is.
 */
export function notARetryable503(answer: Answer): string | null {
  const retryAfter = answer.headers['retry-after'];
  const { message, ...rest } = answer.body;
  if (answer.status !== 503) return `status ${answer.status}`;
  if (typeof retryAfter !== 'string' || !/^[1-9][0-9]*$/.test(retryAfter)) return `Retry-After ${JSON.stringify(retryAfter)}`;
  if (JSON.stringify(rest) !== JSON.stringify({ error: 'Service Unavailable', code: 'SERVICE_UNAVAILABLE' })) return `envelope ${JSON.stringify(answer.body)}`;
  if (typeof message !== 'string' || !/temporarily unavailable.*retry/i.test(message)) return `message ${JSON.stringify(message)}`;
  return null;
}
