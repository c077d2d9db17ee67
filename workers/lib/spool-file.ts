import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';

/**
 * Runs `fn` with the path of a file that does not exist yet, in a directory of its own under the
 * system's temporary directory, and removes the directory afterwards whatever happened. A stream
 * still closing after a failure then cannot leave the file behind: its directory is gone.
 */
export async function withSpoolFile<T>(fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'showrunner-spool-'));
  try {
    return await fn(path.join(dir, 'body'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A download's sink that keeps its first `limit` bytes in memory and moves to `file` only when the
 * body grows past them. Most media are small (a few hundred KB): they never touch the disk, while a
 * large one still costs no more memory than `limit`. Backpressure follows the file once spilled.
 */
export class SpillSink extends Writable {
  private chunks: Buffer[] = [];
  private size = 0;
  private out: WriteStream | undefined;

  constructor(
    private readonly file: string,
    private readonly limit: number,
  ) {
    super();
  }

  /** Where the body is once the sink has finished: in memory, or in `file`. */
  content(): { body: Buffer } | { file: string } {
    return this.out ? { file: this.file } : { body: Buffer.concat(this.chunks, this.size) };
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.out) {
      this.out.write(chunk, done);
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size <= this.limit) {
      done();
      return;
    }
    const out = createWriteStream(this.file);
    out.on('error', (e) => this.destroy(e));
    this.out = out;
    const buffered = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    out.write(buffered, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    if (!this.out) {
      done();
      return;
    }
    // Finished means closed: the upload opens the file by its name.
    this.out.once('close', () => done());
    this.out.end();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.out?.destroy();
    done(error);
  }
}
