import type { PreviewImage } from '../../db/types.js';

/** The image a thumbnail would be rendered from when the listing offered nothing smaller. */
export interface ThumbnailSourceImage {
  url: string;
  /** Known when the listing said so; a source of unknown size is only ever the fallback. */
  width?: number | null;
  height?: number | null;
}

const covers = (img: { width: number; height: number }, target: { width: number; height: number }): boolean =>
  img.width >= target.width && img.height >= target.height;

/**
 * The smallest image (by pixels) that still covers `target` (width ≥ and height ≥): one of the
 * listing's `previews`, or the source itself; the source when nothing covers. Decoding a 640×360
 * preview instead of a 1920×1080 original is most of a thumbnail job's CPU. A preview larger than
 * a source of known size is not the same picture at a smaller width, so it is never chosen.
 */
export function pickThumbnailSource(
  source: ThumbnailSourceImage,
  previews: readonly PreviewImage[],
  target: { width: number; height: number },
): ThumbnailSourceImage {
  const sized = source.width && source.height ? { width: source.width, height: source.height } : null;
  let best: ThumbnailSourceImage & { width: number; height: number } = sized && covers(sized, target) ? { ...source, ...sized } : { url: source.url, width: Infinity, height: Infinity };
  for (const p of previews) {
    if (!covers(p, target)) continue;
    if (sized && (p.width > sized.width || p.height > sized.height)) continue;
    if (p.width * p.height < best.width * best.height) best = p;
  }
  return best.width === Infinity ? source : best;
}
