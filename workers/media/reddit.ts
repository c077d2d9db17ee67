import type { MediaType } from '../../db/types.js';

/** A media item as the sync writes it to `session_media`. */
export interface MediaItem {
  mediaUrl: string;
  thumbnail: string | null;
  caption: string | null;
  type: MediaType;
  redditPostId: string;
  redditPostUrl: string;
  subreddit: string;
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
  preview?: { images?: { source?: { url?: unknown } }[] };
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
