/**
 * The local Reddit and media server as a process of its own, for a test whose app runs where the
 * test process cannot go (test/dev-embedded.test.ts: a network namespace, entered with nsenter).
 * Serves an image listing for the subreddit sets given as arguments (`earthporn,pics`), prints
 * `fixture <baseUrl>` and runs until stdin closes or it is signalled.
 */
import { startFixtureServer, type FixturePost } from './fixture-server.js';

const fixture = await startFixtureServer();
for (const [n, set] of process.argv.slice(2).entries()) {
  const subreddits = set.split(',');
  const posts: FixturePost[] = [];
  for (let i = 0; i < 2; i++) {
    const id = `ns${n}x${i}`;
    await fixture.image(`/media/${id}.jpg`, { width: 1280, height: 720, format: 'jpeg' });
    posts.push({ id, kind: 'image', path: `/media/${id}.jpg` });
  }
  fixture.setListing(subreddits, posts);
}
console.log(`fixture ${fixture.baseUrl}`);
const end = (): void => void fixture.close().finally(() => process.exit(0));
process.stdin.on('end', end).resume();
process.on('SIGTERM', end);
