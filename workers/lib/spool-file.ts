import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';

/** A file that does not exist yet; its directory is made on the first `path()` (most bodies never need one). */
export interface SpoolFile {
  path(): Promise<string>;
}

/**
 * Runs `fn` with a {@link SpoolFile}: a path in a directory of its own under the system's temporary
 * directory, made only if asked for, and removed afterwards whatever happened. A stream still
 * closing after a failure then cannot leave the file behind: its directory is gone.
 */
export async function withSpoolFile<T>(fn: (file: SpoolFile) => Promise<T>): Promise<T> {
  let dir: Promise<string> | undefined;
  try {
    return await fn({ path: async () => path.join(await (dir ??= mkdtemp(path.join(os.tmpdir(), 'showrunner-spool-'))), 'body') });
  } finally {
    const made = await dir?.catch(() => undefined);
    if (made) await rm(made, { recursive: true, force: true });
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
  private out: { stream: WriteStream; file: string } | undefined;

  constructor(
    private readonly file: SpoolFile,
    private readonly limit: number,
  ) {
    super();
  }

  /**
   * Where the body is once the sink has finished: in memory, as the chunks it came in (an upload
   * streams them; joining them would copy the body once more), or in the spool file.
   */
  content(): { chunks: readonly Buffer[] } | { file: string } {
    return this.out ? { file: this.out.file } : { chunks: this.chunks };
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.out) {
      this.out.stream.write(chunk, done);
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size <= this.limit) {
      done();
      return;
    }
    // Writable calls _write once at a time, so nothing else is written until `done`.
    this.file.path().then((file) => {
      const stream = createWriteStream(file);
      stream.on('error', (e) => this.destroy(e));
      this.out = { stream, file };
      const buffered = Buffer.concat(this.chunks, this.size);
      this.chunks = [];
      stream.write(buffered, done);
    }, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    if (!this.out) {
      done();
      return;
    }
    // Finished means closed: the upload opens the file by its name.
    this.out.stream.once('close', () => done());
    this.out.stream.end();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.out?.stream.destroy();
    done(error);
  }
}
