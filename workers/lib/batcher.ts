/**
 * Turns many concurrent single requests into few calls of `run`, as a database's group commit does:
 * a request made while no call is running starts one at once (after the current tick, so requests of
 * the same tick share it); requests made while a call runs wait for it and then go together in the
 * next. Nothing waits on a timer, so a lone request is never delayed, and under load each call
 * carries what arrived during the previous one. `run` answers one result per input, in order; when
 * it throws, every request of that call fails with its error.
 */
export class Batcher<I, O> {
  private queued: { input: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  constructor(
    private readonly run: (inputs: I[]) => Promise<O[]>,
    private readonly maxBatch = 100,
  ) {}

  request(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queued.push({ input, resolve, reject });
      if (!this.running) {
        this.running = true;
        queueMicrotask(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queued.length > 0) {
      const batch = this.queued.splice(0, this.maxBatch);
      try {
        const outputs = await this.run(batch.map((b) => b.input));
        batch.forEach((b, i) => b.resolve(outputs[i]!));
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.running = false;
  }
}
