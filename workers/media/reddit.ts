import type { MediaPreviews, MediaType, PreviewImage } from '../../db/types.js';

/** A media item as the sync writes it to `session_media`. */
export interface MediaItem {
  mediaUrl: string;
  thumbnail: string | null;
  caption: string | null;
  type: MediaType;
  redditPostId: string;
  redditPostUrl: string;
  subreddit: string;
  /** The listing's preview of the item (the source's size and smaller renditions), when it has one. */
  previews: MediaPreviews | null;
}

interface RedditImage {
  url?: unknown;
  width?: unknown;
  height?: unknown;
}

interface RedditPost {
  id?: unknown;
  title?: unknown;
  subreddit?: unknown;
  permalink?: unknown;
  url?: unknown;
  post_hint?: unknown;
  is_video?: unknown;
  over_18?: unknown;
  thumbnail?: unknown;
  preview?: { images?: { source?: RedditImage; resolutions?: unknown }[] };
  media?: { reddit_video?: { fallback_url?: unknown; is_gif?: unknown } } | null;
  secure_media?: { reddit_video?: { fallback_url?: unknown; is_gif?: unknown } } | null;
}

/** The listing URL for a set of subreddits (`/r/a+b/hot.json`). */
export function listingUrl(baseUrl: string, subreddits: string[], limit = 100): string {
  return `${baseUrl}/r/${subreddits.map(encodeURIComponent).join('+')}/hot.json?limit=${limit}&raw_json=1`;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const httpUrl = (v: unknown): string | null => {
  const s = str(v);
  if (!s) return null;
  try {
    const u = new URL(s.replace(/&amp;/g, '&'));
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.toString() : null;
  } catch {
    return null;
  }
};

const dimension = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 100_000 ? v : null);

/** Reddit lists up to six renditions; anything past a few dozen is not a listing we trust. */
const MAX_RESOLUTIONS = 32;

/** The first preview image's source size and its renditions that have a usable URL and size. */
function previewsOf(post: RedditPost): MediaPreviews | null {
  const image = post.preview?.images?.[0];
  if (!image) return null;
  const width = dimension(image.source?.width);
  const height = dimension(image.source?.height);
  const resolutions: PreviewImage[] = [];
  for (const r of Array.isArray(image.resolutions) ? (image.resolutions as RedditImage[]).slice(0, MAX_RESOLUTIONS) : []) {
    const url = httpUrl(r?.url);
    const w = dimension(r?.width);
    const h = dimension(r?.height);
    if (url && w && h) resolutions.push({ url, width: w, height: h });
  }
  const source = width && height ? { width, height } : null;
  return source || resolutions.length > 0 ? { source, resolutions } : null;
}

const IMAGE_EXT = /\.(jpe?g|png|webp)(\?|$)/i;
const GIF_EXT = /\.gif(\?|$)/i;

/** Maps one listing post to a media item, or null when it carries no media we can show. */
export function postToMedia(post: RedditPost, baseUrl: string): MediaItem | null {
  const id = str(post.id);
  const subreddit = str(post.subreddit);
  if (!id || !subreddit) return null;
  const permalink = str(post.permalink);
  const previewUrl = httpUrl(post.preview?.images?.[0]?.source?.url);
  const thumb = httpUrl(post.thumbnail) ?? previewUrl;
  const video = post.secure_media?.reddit_video ?? post.media?.reddit_video;
  const url = httpUrl(post.url);
  let type: MediaType | null = null;
  let mediaUrl: string | null = null;
  if (video && httpUrl(video.fallback_url)) {
    type = video.is_gif === true ? 'gif' : 'video';
    mediaUrl = httpUrl(video.fallback_url);
  } else if (url && GIF_EXT.test(url)) {
    type = 'gif';
    mediaUrl = url;
  } else if (url && (post.post_hint === 'image' || IMAGE_EXT.test(url))) {
    type = 'image';
    mediaUrl = url;
  }
  if (!type || !mediaUrl) return null;
  return {
    mediaUrl,
    thumbnail: type === 'image' ? thumb ?? mediaUrl : thumb,
    caption: str(post.title)?.slice(0, 500) ?? null,
    type,
    redditPostId: id,
    redditPostUrl: permalink ? new URL(permalink, baseUrl).toString() : `${baseUrl}/comments/${id}`,
    subreddit: subreddit.toLowerCase(),
    previews: previewsOf(post),
  };
}

/** Every media item of a listing, in listing order, each post once. */
export function listingToMedia(listing: unknown, baseUrl: string, max = 100): MediaItem[] {
  const children = (listing as { data?: { children?: { data?: RedditPost }[] } } | null)?.data?.children;
  if (!Array.isArray(children)) throw new Error('listing is not in Reddit listing format (no data.children)');
  const seen = new Set<string>();
  const items: MediaItem[] = [];
  for (const child of children) {
    const item = child?.data ? postToMedia(child.data, baseUrl) : null;
    if (item && !seen.has(item.redditPostId)) {
      seen.add(item.redditPostId);
      items.push(item);
      if (items.length >= max) break;
    }
  }
  return items;
}
