import type { Middleware } from 'koa';
import helmet from 'koa-helmet';

/**
 * The policy of our own HTML pages (the moderation and login pages): scripts only from files of
 * this origin (no inline script, so an injected `<script>` does not run), our inline styles, images
 * from anywhere (thumbnails live in blob storage), and no framing.
 */
export const PAGE_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' https: http: data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Every other response's policy (JSON, bull-board's pages, which bring their own scripts): never framed. */
const DEFAULT_CONTENT_SECURITY_POLICY = "frame-ancestors 'none'";

/**
 * The response headers of docs/security.md, on every response, errors included (helmet: `nosniff`,
 * `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, cross-origin isolation headers, and HSTS
 * when the app is served over https in production). A page that sets its own Content-Security-Policy
 * keeps it; any other response gets one that forbids framing.
 */
export function securityHeaders(options: { hsts: boolean }): Middleware {
  const headers = helmet({
    contentSecurityPolicy: false,
    frameguard: { action: 'deny' },
    strictTransportSecurity: options.hsts ? { maxAge: 365 * 24 * 3600, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
  });
  return async (ctx, next) => {
    await headers(ctx, async () => undefined);
    try {
      await next();
    } finally {
      if (!ctx.response.get('Content-Security-Policy')) ctx.set('Content-Security-Policy', DEFAULT_CONTENT_SECURITY_POLICY);
    }
  };
}
