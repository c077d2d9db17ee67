import { createHash, randomBytes } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

/** Images the tests serve and feed to sharp: ordinary ones, padded ones, broken ones, hostile ones. */

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp';

export interface ImageSpec {
  width?: number;
  height?: number;
  format?: ImageFormat;
  /** Pad to about this many bytes with random (incompressible) data the decoders skip. */
  bytes?: number;
  /** Varies the colour, so two images of one size differ (default: random). */
  seed?: string;
}

export const IMAGE_CONTENT_TYPES: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
};

/** The format a path's extension names (`.jpg` → jpeg), jpeg when it names none. */
export function formatOfPath(path: string): ImageFormat {
  const ext = /\.(\w+)(?:\?|$)/.exec(path)?.[1]?.toLowerCase();
  if (ext === 'png' || ext === 'gif' || ext === 'webp') return ext;
  return 'jpeg';
}

/** A real, decodable image made by sharp: a flat colour derived from the seed. */
export async function makeImage(spec: ImageSpec = {}): Promise<Buffer> {
  const width = spec.width ?? 320;
  const height = spec.height ?? 240;
  const format = spec.format ?? 'jpeg';
  const digest = createHash('sha256').update(spec.seed ?? randomBytes(8).toString('hex')).digest();
  const image = sharp({ create: { width, height, channels: 3, background: { r: digest[0]!, g: digest[1]!, b: digest[2]! } } });
  const encoded = await image.toFormat(format).toBuffer();
  return spec.bytes === undefined ? encoded : padImage(encoded, format, spec.bytes);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * Grows an encoded image to about `bytes` with random data in a place each format's decoder skips
 * (a private PNG chunk, JPEG comments, GIF comments, an unknown WebP chunk), so it stays decodable
 * but does not compress in transit. Returns it unchanged when it is already that large.
 */
export function padImage(image: Buffer, format: ImageFormat, bytes: number): Buffer {
  const room = bytes - image.length;
  if (room <= 16) return image;
  switch (format) {
    case 'png': {
      // Before IEND (the last 12 bytes). `paDd`: ancillary, private, safe to copy.
      return Buffer.concat([image.subarray(0, -12), pngChunk('paDd', randomBytes(room - 12)), image.subarray(-12)]);
    }
    case 'jpeg': {
      // COM segments right after SOI; each carries at most 65533 bytes.
      const segments: Buffer[] = [];
      let left = room;
      while (left > 4) {
        const size = Math.min(65_533, left - 4);
        const head = Buffer.from([0xff, 0xfe, 0, 0]);
        head.writeUInt16BE(size + 2, 2);
        segments.push(head, randomBytes(size));
        left -= size + 4;
      }
      return Buffer.concat([image.subarray(0, 2), ...segments, image.subarray(2)]);
    }
    case 'gif': {
      // One comment extension before the trailer (0x3b), in sub-blocks of up to 255 bytes.
      const blocks: Buffer[] = [Buffer.from([0x21, 0xfe])];
      let left = room - 3;
      while (left > 1) {
        const size = Math.min(255, left - 1);
        blocks.push(Buffer.from([size]), randomBytes(size));
        left -= size + 1;
      }
      blocks.push(Buffer.from([0]));
      return Buffer.concat([image.subarray(0, -1), ...blocks, image.subarray(-1)]);
    }
    case 'webp': {
      // An unknown chunk after the image data; RIFF's size field grows to cover it.
      const size = (room - 8) & ~1;
      const head = Buffer.alloc(8);
      head.write('PADD', 0, 'latin1');
      head.writeUInt32LE(size, 4);
      const out = Buffer.concat([image, head, randomBytes(size)]);
      out.writeUInt32LE(out.length - 8, 4);
      return out;
    }
  }
}

/** Starts like a JPEG (so a content sniffer would say jpeg) and then is nonsense. */
export function corruptJpeg(): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('this is not really a jpeg'), randomBytes(64)]);
}

/**
 * A decompression bomb: a small, valid PNG (1-bit greyscale, all black) that declares huge
 * dimensions, for checking sharp's pixel limit refuses it before decoding. 20000×20000 is 400
 * megapixels in a file of a few tens of kilobytes.
 */
export function decompressionBombPng(options: { width?: number; height?: number } = {}): Buffer {
  const width = options.width ?? 20_000;
  const height = options.height ?? 20_000;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  // Every row: filter byte 0 then ceil(width / 8) zero bytes; all-zero data compresses ~1000:1.
  const raw = Buffer.alloc((1 + Math.ceil(width / 8)) * height);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(raw, { level: 9 })), pngChunk('IEND', Buffer.alloc(0))]);
}
