import { createHash } from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { DownloadError, safeDownload, safeFetchJson, safeRevalidateTo, type SafeFetchOptions } from '../workers/lib/safe-fetch.js';
import { endlessBody, startFixtureServer, type FixtureServer } from './helpers/fixture-server.js';
import { freePort } from '../scripts/lib/child-process.js';

const isImage = (type: string): boolean => type.startsWith('image/');

/** The DownloadError a download fails with (and a test failure if it succeeds or throws something else). */
async function failure(promise: Promise<unknown>): Promise<DownloadError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof DownloadError) return e;
    throw new Error(`expected a DownloadError, got ${String(e)}`);
  }
  throw new Error('expected the download to fail, it succeeded');
}

/** Settles when the server's side of the response closes: the client went away or it ended. */
function closedBy(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => res.once('close', () => resolve()));
}

describe('safe-fetch', () => {
  let fixture: FixtureServer;
  const open: SafeFetchOptions = { allowPrivateHosts: true, maxBytes: 5 * 1024 * 1024 };

  before(async () => {
    fixture = await startFixtureServer();
  });
  after(async () => {
    await fixture.close();
  });

  it('downloads an image with its type, size and sha256, asking for no compression', async () => {
    const bytes = await fixture.image('/media/ok.png', { width: 200, height: 100, format: 'png' });
    const got = await safeDownload(fixture.url('/media/ok.png'), { ...open, accept: isImage });
    expect(got.url).to.equal(fixture.url('/media/ok.png'));
    expect(got.contentType).to.equal('image/png');
    expect(got.bytes).to.equal(bytes.length);
    expect(got.body.equals(bytes)).to.equal(true);
    expect(got.sha256).to.equal(createHash('sha256').update(bytes).digest('hex'));
    expect(fixture.lastRequest('/media/ok.png')?.headers['accept-encoding']).to.equal('identity');
  });

  it('follows relative and absolute redirects and reports the final URL', async () => {
    await fixture.image('/media/final.jpg');
    fixture.route('/go/1', (_req, res) => void res.writeHead(302, { location: '/go/2' }).end());
    fixture.route('/go/2', (_req, res) => void res.writeHead(301, { location: fixture.url('/media/final.jpg') }).end());
    const got = await safeDownload(fixture.url('/go/1'), open);
    expect(got.url).to.equal(fixture.url('/media/final.jpg'));
    expect(got.contentType).to.equal('image/jpeg');
  });

  describe('revalidation (safeRevalidateTo)', () => {
    const sink = (): { open: () => Writable; bytes: () => Buffer } => {
      const chunks: Buffer[] = [];
      return {
        open: () => new Writable({ write: (c: Buffer, _e, done) => void (chunks.push(c), done()) }),
        bytes: () => Buffer.concat(chunks),
      };
    };
    const tagged = (etag: string, body: Buffer) => (req: http.IncomingMessage, res: http.ServerResponse) =>
      req.headers['if-none-match'] === etag ? void res.writeHead(304, { etag }).end() : void res.writeHead(200, { 'content-type': 'image/jpeg', etag }).end(body);

    it('sends If-None-Match: not modified on a 304, without a body; the body (with its strong ETag) when the tag no longer matches', async () => {
      const body = Buffer.from('tagged bytes');
      fixture.route('/media/tagged.jpg', tagged('"t1"', body));
      const same = sink();
      expect(await safeRevalidateTo(fixture.url('/media/tagged.jpg'), '"t1"', open, same.open)).to.deep.equal({ notModified: true, freshForSeconds: 0 });
      expect(fixture.lastRequest('/media/tagged.jpg')?.headers['if-none-match']).to.equal('"t1"');
      expect(same.bytes().length).to.equal(0);
      const changed = sink();
      const got = await safeRevalidateTo(fixture.url('/media/tagged.jpg'), '"t0"', open, changed.open);
      expect(got).to.include({ etag: '"t1"', bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
      expect(changed.bytes().equals(body)).to.equal(true);
    });

    it('reports how long the bytes stay current: Cache-Control max-age less Age; 0 with no-cache, no-store or no word', async () => {
      const cases: [Record<string, string>, number][] = [
        [{ 'cache-control': 'public, max-age=3600' }, 3600],
        [{ 'cache-control': 'max-age=3600, immutable', age: '600' }, 3000],
        [{ 'cache-control': 'max-age=60', age: '600' }, 0],
        [{ 'cache-control': 'max-age=3600, no-cache' }, 0],
        [{ 'cache-control': 'no-store, max-age=3600' }, 0],
        [{}, 0],
      ];
      for (const [i, [headers, fresh]] of cases.entries()) {
        fixture.route(`/media/fresh-${i}.jpg`, (req, res) =>
          req.headers['if-none-match'] === '"f"' ? void res.writeHead(304, { etag: '"f"', ...headers }).end() : void res.writeHead(200, { 'content-type': 'image/jpeg', etag: '"f"', ...headers }).end('x'),
        );
        expect((await safeDownload(fixture.url(`/media/fresh-${i}.jpg`), open)).freshForSeconds, JSON.stringify(headers)).to.equal(fresh);
        expect(await safeRevalidateTo(fixture.url(`/media/fresh-${i}.jpg`), '"f"', open, sink().open), `304 ${JSON.stringify(headers)}`).to.deep.equal({ notModified: true, freshForSeconds: fresh });
      }
    });

    it('reports only strong ETags; a 304 to a request without If-None-Match is a failure; after a redirect the tag is not sent', async () => {
      fixture.route('/media/weak.jpg', (_req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg', etag: 'W/"w"' }).end('weak'));
      expect((await safeDownload(fixture.url('/media/weak.jpg'), open)).etag).to.equal(null);
      fixture.route('/media/always-304.jpg', (_req, res) => void res.writeHead(304).end());
      expect((await failure(safeDownload(fixture.url('/media/always-304.jpg'), open))).reason).to.equal('http_status');
      fixture.route('/media/moved.jpg', (_req, res) => void res.writeHead(302, { location: '/media/moved-here.jpg' }).end());
      fixture.route('/media/moved-here.jpg', tagged('"m"', Buffer.from('moved')));
      const got = await safeRevalidateTo(fixture.url('/media/moved.jpg'), '"m"', open, sink().open);
      expect(got).to.not.have.property('notModified');
      expect(fixture.lastRequest('/media/moved-here.jpg')?.headers['if-none-match']).to.equal(undefined);
    });
  });

  describe('private addresses', () => {
    it('refuses the loopback fixture server itself when private hosts are not allowed, without connecting', async () => {
      await fixture.image('/media/private.jpg');
      const e = await failure(safeDownload(fixture.url('/media/private.jpg'), { ...open, allowPrivateHosts: false }));
      expect(e.reason).to.equal('private_address');
      expect(e.retryable).to.equal(false);
      expect(e.message).to.equal(`${fixture.url('/media/private.jpg')} refused: resolves to a private address 127.0.0.1 (loopback)`);
      expect(fixture.hits('/media/private.jpg')).to.equal(0);
    });

    it('checks every redirect target: to the metadata address, to localhost', async () => {
      const trusted = { ...open, allowPrivateHosts: false, trustedOrigins: [fixture.baseUrl] };
      fixture.route('/to/metadata', (_req, res) => void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end());
      const { port } = new URL(fixture.baseUrl);
      fixture.route('/to/localhost', (_req, res) => void res.writeHead(307, { location: `http://localhost:${port}/media/ok.png` }).end());
      await fixture.image('/media/ok.png');
      // The trusted origin itself is reachable, so the refusals below are about the redirect targets.
      expect((await safeDownload(fixture.url('/media/ok.png'), trusted)).contentType).to.equal('image/png');

      const metadata = await failure(safeDownload(fixture.url('/to/metadata'), trusted));
      expect(metadata.reason).to.equal('private_address');
      expect(metadata.retryable).to.equal(false);
      expect(metadata.message).to.match(/^http:\/\/169\.254\.169\.254\/latest\/meta-data\/ refused: resolves to a private address 169\.254\.169\.254 \(link-local/);

      const localhost = await failure(safeDownload(fixture.url('/to/localhost'), trusted));
      expect(localhost.reason).to.equal('private_address');
      expect(localhost.message).to.match(/private address (127\.0\.0\.1|::1) \(loopback\)/);
    });

    it('resolves a name once and connects to the checked address, refusing names with any private answer', async () => {
      await fixture.image('/media/named.jpg');
      const { port } = new URL(fixture.baseUrl);
      const resolved: string[] = [];
      const got = await safeDownload(`http://media.fixture.test:${port}/media/named.jpg`, {
        ...open,
        resolve: async (host) => (resolved.push(host), [{ address: '127.0.0.1', family: 4 }]),
      });
      expect(got.contentType).to.equal('image/jpeg');
      expect(resolved).to.deep.equal(['media.fixture.test']);
      expect(fixture.lastRequest('/media/named.jpg')?.headers.host).to.equal(`media.fixture.test:${port}`);

      const mixed = await failure(
        safeDownload('https://cdn.fixture.test/a.jpg', {
          ...open,
          allowPrivateHosts: false,
          resolve: async () => [
            { address: '93.184.216.34', family: 4 },
            { address: '10.0.0.5', family: 4 },
          ],
        }),
      );
      expect(mixed.message).to.equal('https://cdn.fixture.test/a.jpg refused: resolves to a private address 10.0.0.5 (private)');
    });

    it('refuses an IPv4-mapped IPv6 literal by the IPv4 address it carries', async () => {
      // The table of addresses is in address-policy.test.ts; this checks a literal URL host goes through it.
      const e = await failure(safeDownload('http://[::ffff:a00:5]/x.jpg', { ...open, allowPrivateHosts: false }));
      expect(e.reason).to.equal('private_address');
      expect(e.message).to.equal('http://[::ffff:a00:5]/x.jpg refused: resolves to a private address ::ffff:a00:5 (private, as IPv6 ::ffff:a00:5)');
    });
  });

  describe('statuses', () => {
    it('404 is final, with a message naming the URL', async () => {
      fixture.route('/status/404', (_req, res) => void res.writeHead(404).end('nope'));
      const e = await failure(safeDownload(fixture.url('/status/404'), open));
      expect(e).to.include({ reason: 'http_status', status: 404, retryable: false, url: fixture.url('/status/404') });
      expect(e.message).to.equal(`GET ${fixture.url('/status/404')} answered 404`);
    });

    it('503, 429 and 408 are worth retrying', async () => {
      for (const status of [503, 429, 408]) {
        fixture.route(`/status/${status}`, (_req, res) => void res.writeHead(status).end('later'));
        const e = await failure(safeDownload(fixture.url(`/status/${status}`), open));
        expect(e, String(status)).to.include({ reason: 'http_status', status, retryable: true });
      }
    });
  });

  describe('size', () => {
    it('refuses a declared Content-Length over the limit before reading the body', async () => {
      await fixture.image('/media/big.png', { format: 'png', bytes: 200_000 });
      const e = await failure(safeDownload(fixture.url('/media/big.png'), { ...open, maxBytes: 100_000 }));
      expect(e).to.include({ reason: 'too_large', retryable: false });
      expect(e.message).to.equal(`GET ${fixture.url('/media/big.png')}: body exceeds MEDIA_MAX_BYTES (100000 bytes); Content-Length says 200000`);
    });

    it('stops reading a chunked body without Content-Length as soon as it passes the limit', async () => {
      let closed: Promise<void> | undefined;
      fixture.route('/media/endless.jpg', (_req, res) => {
        closed = closedBy(res);
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        endlessBody(res, Buffer.alloc(16 * 1024, 7));
      });
      const e = await failure(safeDownload(fixture.url('/media/endless.jpg'), { ...open, maxBytes: 64 * 1024 }));
      expect(e).to.include({ reason: 'too_large', retryable: false });
      expect(e.message).to.match(/body exceeds MEDIA_MAX_BYTES \(65536 bytes\); aborted after \d+ bytes$/);
      // The server sees the connection go away: we did not keep reading.
      expect(closed, 'the request reached the server').to.not.equal(undefined);
      await closed;
    });

    it('accepts a body of exactly the limit', async () => {
      fixture.route('/media/exact.bin', (_req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.alloc(4096, 1)));
      expect((await safeDownload(fixture.url('/media/exact.bin'), { ...open, maxBytes: 4096 })).bytes).to.equal(4096);
    });
  });

  it('refuses a content type the caller does not accept', async () => {
    fixture.route('/media/lying.jpg', (_req, res) => void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html>not an image</html>'));
    const e = await failure(safeDownload(fixture.url('/media/lying.jpg'), { ...open, accept: isImage }));
    expect(e).to.include({ reason: 'content_type', retryable: false });
    expect(e.message).to.equal(`GET ${fixture.url('/media/lying.jpg')} answered with content type text/html, which is not accepted here`);
  });

  it('refuses a compressed body it did not ask for', async () => {
    fixture.route('/media/gzipped.jpg', (_req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg', 'content-encoding': 'gzip' }).end('xx'));
    expect(await failure(safeDownload(fixture.url('/media/gzipped.jpg'), open))).to.include({ reason: 'content_type', retryable: false });
  });

  describe('URLs and redirects', () => {
    it('fetches only http and https', async () => {
      for (const url of ['file:///etc/passwd', 'ftp://example.com/a.jpg', 'not a url', 'gopher://x']) {
        expect(await failure(safeDownload(url, open)), url).to.include({ reason: 'bad_url', retryable: false });
      }
      fixture.route('/to/file', (_req, res) => void res.writeHead(302, { location: 'file:///etc/passwd' }).end());
      const e = await failure(safeDownload(fixture.url('/to/file'), open));
      expect(e.reason).to.equal('bad_url');
      expect(e.message).to.equal(`${fixture.url('/to/file')} redirected to file:///etc/passwd, refused: only http and https URLs are fetched`);
    });

    it('gives up after maxRedirects', async () => {
      fixture.route('/loop', (_req, res) => void res.writeHead(302, { location: '/loop' }).end());
      const e = await failure(safeDownload(fixture.url('/loop'), { ...open, maxRedirects: 3 }));
      expect(e).to.include({ reason: 'too_many_redirects', retryable: false });
      expect(e.message).to.equal(`GET ${fixture.url('/loop')} redirected more than 3 times (last: ${fixture.url('/loop')})`);
      expect(fixture.hits('/loop')).to.equal(4);
    });
  });

  describe('time and the network', () => {
    it('an endless slow body hits the total timeout, which is worth retrying, and the connection is closed', async () => {
      let closed: Promise<void> | undefined;
      fixture.route('/media/slow.jpg', (_req, res) => {
        closed = closedBy(res);
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.write(Buffer.from([0xff, 0xd8]));
        const timer = setInterval(() => res.write(Buffer.from([0])), 20);
        res.once('close', () => clearInterval(timer));
      });
      const e = await failure(safeDownload(fixture.url('/media/slow.jpg'), { ...open, timeoutMs: 300 }));
      expect(e).to.include({ reason: 'timeout', retryable: true });
      expect(e.message).to.equal(`GET ${fixture.url('/media/slow.jpg')} did not finish within 300 ms`);
      // The server sees the connection go away: the download was aborted, not left reading.
      expect(closed, 'the request reached the server').to.not.equal(undefined);
      await closed;
    });

    it('a server that never answers hits the total timeout too', async () => {
      fixture.route('/silent', () => undefined);
      const e = await failure(safeDownload(fixture.url('/silent'), { ...open, timeoutMs: 200 }));
      expect(e).to.include({ reason: 'timeout', retryable: true });
    });

    it('a refused connection is a retryable network error', async () => {
      const port = await freePort();
      const e = await failure(safeDownload(`http://127.0.0.1:${port}/x.jpg`, open));
      expect(e).to.include({ reason: 'network', retryable: true });
      expect(e.message).to.match(new RegExp(`^GET http://127\\.0\\.0\\.1:${port}/x\\.jpg failed: .*ECONNREFUSED`));
    });

    it('a body cut short of its Content-Length is a retryable network error', async () => {
      fixture.route('/media/truncated.jpg', (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': 10_000 });
        res.write(Buffer.alloc(100), () => res.destroy());
      });
      expect(await failure(safeDownload(fixture.url('/media/truncated.jpg'), open))).to.include({ reason: 'network', retryable: true });
    });

    it("the caller's signal aborts a download", async () => {
      const controller = new AbortController();
      fixture.route('/media/hang.jpg', (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.write(Buffer.from([0xff, 0xd8]), () => controller.abort());
      });
      const e = await failure(safeDownload(fixture.url('/media/hang.jpg'), { ...open, signal: controller.signal }));
      expect(e).to.include({ reason: 'aborted', retryable: true });
    });
  });

  describe('kept-alive connections', () => {
    /** A raw HTTP/1.1 server counting connections; `answer` decides per request on a connection. */
    async function connectionServer(answer: (requestOnConnection: number, socket: net.Socket) => void): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
      let connections = 0;
      const sockets = new Set<net.Socket>();
      const server = net.createServer((socket) => {
        connections++;
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        let requests = 0;
        let pending = '';
        socket.on('data', (d) => {
          pending += d.toString('latin1');
          while (pending.includes('\r\n\r\n')) {
            pending = pending.slice(pending.indexOf('\r\n\r\n') + 4);
            answer(++requests, socket);
          }
        });
        socket.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as net.AddressInfo;
      return {
        url: `http://127.0.0.1:${port}`,
        connections: () => connections,
        close: () =>
          new Promise((resolve) => {
            server.close(() => resolve());
            for (const socket of sockets) socket.destroy();
          }),
      };
    }
    const ok = (socket: net.Socket): void =>
      void socket.write('HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 4\r\nconnection: keep-alive\r\n\r\nabcd');

    it('downloads from one host reuse one connection, but only for the same checked addresses', async () => {
      const server = await connectionServer((_n, socket) => ok(socket));
      try {
        const { port } = new URL(server.url);
        for (let i = 0; i < 3; i++) expect((await safeDownload(`${server.url}/a.jpg`, open)).body.toString()).to.equal('abcd');
        expect(server.connections()).to.equal(1);
        // The same name resolving to other addresses gets a connection of its own: the pool never
        // hands a request a connection made to addresses it did not check itself.
        const named = (...addresses: string[]): SafeFetchOptions => ({ ...open, resolve: async () => addresses.map((address) => ({ address, family: 4 })) });
        await safeDownload(`http://pinned.fixture.test:${port}/a.jpg`, named('127.0.0.1'));
        await safeDownload(`http://pinned.fixture.test:${port}/a.jpg`, named('127.0.0.1'));
        expect(server.connections()).to.equal(2);
        await safeDownload(`http://pinned.fixture.test:${port}/a.jpg`, named('127.0.0.1', '127.0.0.3'));
        expect(server.connections()).to.equal(3);
      } finally {
        await server.close();
      }
    });

    it('a kept-alive connection the server drops as it is reused is retried once on a new one', async () => {
      // Every connection answers its first request and resets on the second, as a server whose idle
      // timeout fires just then would.
      const server = await connectionServer((n, socket) => (n === 1 ? ok(socket) : socket.resetAndDestroy()));
      try {
        for (let i = 0; i < 3; i++) expect((await safeDownload(`${server.url}/b.jpg`, open)).body.toString()).to.equal('abcd');
        expect(server.connections()).to.be.greaterThan(1);
      } finally {
        await server.close();
      }
    });
  });

  describe('safeFetchJson', () => {
    it('parses a Reddit listing', async () => {
      fixture.setListing(['pics', 'Gifs'], [
        { id: 'a1', kind: 'image' },
        { id: 'b2', kind: 'gif' },
        { id: 'c3', kind: 'video', title: 'A video' },
      ]);
      type Listing = { kind: string; data: { children: { data: { id: string; subreddit: string; post_hint: string; media: unknown } }[] } };
      const listing = await safeFetchJson<Listing>(fixture.url('/r/gifs+pics/hot.json?limit=100&raw_json=1'), open);
      expect(listing.kind).to.equal('Listing');
      expect(listing.data.children.map((c) => [c.data.id, c.data.subreddit, c.data.post_hint])).to.deep.equal([
        ['a1', 'pics', 'image'],
        ['b2', 'Gifs', 'image'],
        ['c3', 'pics', 'hosted:video'],
      ]);
      expect(fixture.lastRequest('/r/gifs+pics/hot.json')?.headers.accept).to.equal('application/json');
      // The listing's media are served without further setup.
      const media = listing.data.children[2]!.data.media as { reddit_video: { fallback_url: string } };
      expect((await safeDownload(media.reddit_video.fallback_url, open)).contentType).to.equal('video/mp4');
      expect((await safeDownload(fixture.url('/media/b2.gif'), open)).contentType).to.equal('image/gif');
    });

    it('refuses HTML and fails on a body that is not JSON, neither retryable', async () => {
      fixture.route('/html.json', (_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'));
      expect(await failure(safeFetchJson(fixture.url('/html.json'), open))).to.include({ reason: 'content_type', retryable: false });
      fixture.route('/broken.json', (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind": "List'));
      const e = await failure(safeFetchJson(fixture.url('/broken.json'), open));
      expect(e).to.include({ reason: 'bad_body', retryable: false });
      expect(e.message).to.match(new RegExp(`^GET ${fixture.url('/broken.json').replace(/[.]/g, '\\.')} answered with invalid JSON: `));
    });
  });
});
