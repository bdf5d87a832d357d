// Timers, and a small "something changed" signal for waiters.
//
// In Node, work in progress (a request, the pause between two retries of it, a caller
// awaiting flush() or close()) keeps the process alive; waiting does not: a client
// waiting for its next batch or for the server to come back never stops a script from
// ending. The client's exit hooks then send, or keep in the buffer, what waits.

export type Timer = ReturnType<typeof setTimeout>;

/** setTimeout that does not hold a Node process open (a plain timer in a browser). */
export function backgroundTimer(fn: () => void, ms: number): Timer {
  const timer = setTimeout(fn, ms);
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

/** Hold a Node process open until the returned function is called (no-op in a browser). */
export function keepAlive(): () => void {
  const timer = setInterval(() => undefined, 1 << 30);
  return () => clearInterval(timer);
}

/** Wait `ms` (work in progress: keeps Node alive); true when the time passed, false when `signal` aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (slept: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", aborted);
      resolve(slept);
    };
    const aborted = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener("abort", aborted);
  });
}

/** `await changed.next()` resolves at the next `notify()`. */
export class Changed {
  private waiters: Array<() => void> = [];

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** The next notify(), or `ms` passing (if given), whichever comes first. Waiting: Node may exit. */
  next(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: Timer | undefined;
      const wake = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.waiters.push(wake);
      if (ms !== undefined) {
        timer = backgroundTimer(() => {
          this.waiters = this.waiters.filter((w) => w !== wake);
          resolve();
        }, Math.max(0, ms));
      }
    });
  }
}
