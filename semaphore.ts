/** At most `permits` holders at once; waiters are served first come, first served. */
export class Semaphore {
  private readonly waiting: (() => void)[] = [];

  constructor(private permits: number) {}

  /** Resolves with a release function once a permit is free; call it exactly once. */
  async acquire(): Promise<() => void> {
    if (this.permits > 0) this.permits -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.permits += 1;
    };
  }
}
