import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { formatOfPath, IMAGE_CONTENT_TYPES, makeImage, type ImageFormat } from './fixture-images.js';

/** One post of a fixture subreddit listing. */
export interface FixturePost {
  id: string;
  kind: 'image' | 'gif' | 'video';
  /** Media path on the fixture server; default `/media/<id>.<jpg|gif|mp4>`. */
  path?: string;
  title?: string;
  /** Default: the listing's subreddits in turn. */
  subreddit?: string;
  /**
   * Smaller renditions of the post's preview image, listed in `preview.images[0].resolutions` as
   * Reddit does (HTML-escaped URLs with a query) and served as generated JPEGs of that size at
   * `resolutionPath(id, size)`. Default: none.
   */
  previews?: { width: number; height: number }[];
}

/** Where the fixture server serves a post's preview rendition of `size` (the listing adds a query). */
export function resolutionPath(postId: string, size: { width: number; height: number }): string {
  return `/preview/${postId}-${size.width}x${size.height}.jpg`;
}

export type FixtureHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface FixtureServer {
  /** `http://127.0.0.1:<port>`, usable as `REDDIT_BASE_URL`. */
  baseUrl: string;
  url(path: string): string;
  /**
   * Serves `GET /r/<a>+<b>/hot.json` (any query, any order of the subreddits) as a Reddit listing of
   * `posts`. Media paths nothing serves yet get a generated image (or a few bytes of video), and
   * gifs and videos a still at `/preview/<id>.jpg`, so a listing works without more setup.
   */
  setListing(subreddits: string[], posts: FixturePost[]): void;
  /** Generates an image with sharp, serves it at `path` with its content type and returns its bytes. */
  image(path: string, opts?: { width?: number; height?: number; format?: ImageFormat; bytes?: number }): Promise<Buffer>;
  /** Any response at all: errors, corrupt bytes, lying content types, slow or endless bodies, redirects. */
  route(path: string, handler: FixtureHandler): void;
  /** Requests `path` (without its query) received so far. */
  hits(path: string): number;
  /** The last request to `path`: its URL (with query) and headers. */
  lastRequest(path: string): { url: string; headers: http.IncomingHttpHeaders } | undefined;
  close(): Promise<void>;
}

const LISTING_PATH = /^\/r\/([^/]+)\/hot\.json$/;

/** Subreddit sets compare without order or case: `/r/B+a/` and `/r/a+b/` are one listing. */
function listingKey(subreddits: string[]): string {
  return subreddits.map((s) => s.toLowerCase()).sort().join('+');
}

function defaultPath(post: FixturePost): string {
  return `/media/${post.id}.${post.kind === 'image' ? 'jpg' : post.kind === 'gif' ? 'gif' : 'mp4'}`;
}

/** Starts the server on 127.0.0.1 and a free port. */
export async function startFixtureServer(): Promise<FixtureServer> {
  const routes = new Map<string, FixtureHandler>();
  const listings = new Map<string, unknown>();
  const sizes = new Map<string, { width: number; height: number }>();
  const hitCounts = new Map<string, number>();
  const last = new Map<string, { url: string; headers: http.IncomingHttpHeaders }>();

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fixture.invalid');
    const path = url.pathname;
    hitCounts.set(path, (hitCounts.get(path) ?? 0) + 1);
    last.set(path, { url: req.url ?? '/', headers: req.headers });
    try {
      const handler = routes.get(path);
      if (handler) return handler(req, res);
      const listing = LISTING_PATH.exec(path);
      if (listing) {
        const body = listings.get(listingKey(listing[1]!.split('+').map(decodeURIComponent)));
        if (body !== undefined) {
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
          return;
        }
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no fixture at ${path}`);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const url = (path: string): string => `${baseUrl}${path.startsWith('/') ? path : `/${path}`}`;

  const serveBytes = (body: Buffer, contentType: string): FixtureHandler => (_req, res) => {
    res.writeHead(200, { 'content-type': contentType, 'content-length': body.length }).end(body);
  };

  /** Generates on first request, for media a test did not set up itself. */
  const lazyImage = (format: ImageFormat, seed: string, size: { width: number; height: number }): FixtureHandler => {
    let made: Promise<Buffer> | undefined;
    return (_req, res) => {
      made ??= makeImage({ ...size, format, seed });
      made.then(
        (body) => serveBytes(body, IMAGE_CONTENT_TYPES[format])(_req, res),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
    };
  };

  // Not a playable video; the workers only copy video bytes, they never decode them.
  const fakeVideo = (): Buffer => Buffer.concat([Buffer.from('0000001866747970697336d00000000069736f6d', 'hex'), randomBytes(2048)]);

  const fixture: FixtureServer = {
    baseUrl,
    url,

    setListing(subreddits, posts) {
      const children = posts.map((post, i) => {
        const subreddit = post.subreddit ?? subreddits[i % Math.max(subreddits.length, 1)] ?? 'fixture';
        const path = post.path ?? defaultPath(post);
        const mediaUrl = url(path);
        const size = sizes.get(path) ?? { width: 640, height: 480 };
        let previewUrl = mediaUrl;
        if (post.kind === 'image') {
          if (!routes.has(path)) routes.set(path, lazyImage(formatOfPath(path), post.id, size));
        } else {
          const previewPath = `/preview/${post.id}.jpg`;
          previewUrl = url(previewPath);
          if (!routes.has(previewPath)) routes.set(previewPath, lazyImage('jpeg', `${post.id}-preview`, size));
          if (!routes.has(path)) routes.set(path, post.kind === 'gif' ? lazyImage('gif', post.id, size) : serveBytes(fakeVideo(), 'video/mp4'));
        }
        const resolutions = (post.previews ?? []).map((p) => {
          const at = resolutionPath(post.id, p);
          if (!routes.has(at)) routes.set(at, lazyImage('jpeg', `${post.id}-${p.width}`, p));
          return { url: `${url(at)}?width=${p.width}&amp;crop=smart&amp;s=fixture`, width: p.width, height: p.height };
        });
        const video = post.kind === 'video';
        return {
          kind: 't3',
          data: {
            id: post.id,
            name: `t3_${post.id}`,
            title: post.title ?? `Fixture post ${post.id}`,
            subreddit,
            permalink: `/r/${subreddit}/comments/${post.id}/x/`,
            url: mediaUrl,
            post_hint: video ? 'hosted:video' : 'image',
            is_video: video,
            over_18: false,
            preview: { images: [{ id: post.id, source: { url: previewUrl, width: size.width, height: size.height }, resolutions }], enabled: true },
            media: video ? { reddit_video: { fallback_url: mediaUrl, is_gif: false, width: size.width, height: size.height } } : null,
            thumbnail: previewUrl,
          },
        };
      });
      listings.set(listingKey(subreddits), { kind: 'Listing', data: { after: null, before: null, dist: children.length, children } });
    },

    async image(path, opts = {}) {
      const format = opts.format ?? formatOfPath(path);
      const width = opts.width ?? 640;
      const height = opts.height ?? 480;
      const body = await makeImage({ width, height, format, seed: path, ...(opts.bytes !== undefined ? { bytes: opts.bytes } : {}) });
      sizes.set(path, { width, height });
      routes.set(path, serveBytes(body, IMAGE_CONTENT_TYPES[format]));
      return body;
    },

    route(path, handler) {
      routes.set(path, handler);
    },

    hits: (path) => hitCounts.get(path) ?? 0,
    lastRequest: (path) => last.get(path),

    async close() {
      // Endless or slow responses would otherwise hold close() open.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
  return fixture;
}

/** Writes `chunk` for as long as the client keeps reading, never ending the body. */
export function endlessBody(res: http.ServerResponse, chunk: Buffer): void {
  let open = true;
  res.once('close', () => (open = false));
  const pump = (): void => {
    while (open && res.write(chunk));
    if (open) res.once('drain', pump);
  };
  pump();
}
