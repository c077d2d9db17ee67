import { expect } from 'chai';
import { listingToMedia } from '../workers/media/reddit.js';
import { pickThumbnailSource } from '../workers/media/thumbnail-source.js';

const TARGET = { width: 640, height: 360 };
const at = (width: number, height: number) => ({ url: `https://preview.example.test/${width}x${height}.jpg`, width, height });

describe('pickThumbnailSource', () => {
  const source = { url: 'https://i.example.test/full.jpg', width: 1920, height: 1080 };

  it('picks the smallest preview that covers the target in both dimensions', () => {
    const previews = [at(1080, 607), at(108, 60), at(960, 540), at(640, 360), at(320, 180)];
    expect(pickThumbnailSource(source, previews, TARGET).url).to.equal(at(640, 360).url);
  });

  it('does not take a preview that is wide enough but too short (portrait crops, panoramas)', () => {
    const panorama = { url: 'https://i.example.test/pano.jpg', width: 4000, height: 1000 };
    // 1280×320 is wider than 640 but shorter than 360; 1440×360 covers.
    expect(pickThumbnailSource(panorama, [at(1280, 320), at(1440, 360)], TARGET).url).to.equal(at(1440, 360).url);
    expect(pickThumbnailSource(panorama, [at(1280, 320)], TARGET).url).to.equal(panorama.url);
  });

  it('falls back to the source when no preview covers the target, or there are none', () => {
    expect(pickThumbnailSource(source, [at(108, 60), at(320, 180), at(639, 360)], TARGET)).to.deep.equal(source);
    expect(pickThumbnailSource(source, [], TARGET)).to.deep.equal(source);
    const unsized = { url: 'https://i.example.test/unsized.jpg' };
    expect(pickThumbnailSource(unsized, [at(320, 180)], TARGET)).to.deep.equal(unsized);
  });

  it('takes a covering preview even when the source size is unknown', () => {
    expect(pickThumbnailSource({ url: 'https://i.example.test/unsized.jpg' }, [at(960, 540), at(640, 480)], TARGET).url).to.equal(at(640, 480).url);
  });

  it('keeps the source when it is itself the smallest that covers, and never takes a preview larger than the source', () => {
    const exact = { url: 'https://i.example.test/exact.jpg', width: 640, height: 360 };
    expect(pickThumbnailSource(exact, [at(1280, 720)], TARGET).url).to.equal(exact.url);
    const small = { url: 'https://i.example.test/small.jpg', width: 320, height: 180 };
    expect(pickThumbnailSource(small, [at(1280, 720)], TARGET).url, 'a "preview" bigger than its source is not one').to.equal(small.url);
  });
});

describe('listingToMedia: previews', () => {
  const post = (preview: unknown) => ({
    data: { children: [{ data: { id: 'p1', subreddit: 'Pics', url: 'https://i.example.test/p1.jpg', post_hint: 'image', preview } }] },
  });

  it('keeps the source size and every rendition with a usable URL and size, unescaping &amp;', () => {
    const [item] = listingToMedia(
      post({
        images: [
          {
            source: { url: 'https://preview.example.test/p1.jpg?s=a&amp;b=c', width: 1920, height: 1080 },
            resolutions: [
              { url: 'https://preview.example.test/p1.jpg?width=640&amp;s=x', width: 640, height: 360 },
              { url: 'javascript:alert(1)', width: 960, height: 540 },
              { url: 'https://preview.example.test/p1.jpg?width=0', width: 0, height: 0 },
              { url: 'https://preview.example.test/p1.jpg?width=320', width: '320', height: 180 },
            ],
          },
        ],
      }),
      'https://reddit.example.test',
    );
    expect(item?.previews).to.deep.equal({
      source: { width: 1920, height: 1080 },
      resolutions: [{ url: 'https://preview.example.test/p1.jpg?width=640&s=x', width: 640, height: 360 }],
    });
  });

  it('is null when the post has no preview, and keeps the source size alone when there are no renditions', () => {
    expect(listingToMedia(post(undefined), 'https://reddit.example.test')[0]?.previews).to.equal(null);
    expect(listingToMedia(post({ images: [{ source: { width: 800, height: 600 }, resolutions: 'nope' }] }), 'https://reddit.example.test')[0]?.previews).to.deep.equal({
      source: { width: 800, height: 600 },
      resolutions: [],
    });
  });
});
