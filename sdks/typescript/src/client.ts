// `Client`: events in, batches out, nothing lost while the server is away.
//
// track() and send() return at once; one async worker sends batches, oldest first, each
// under its own Idempotency-Key, retrying with backoff. Every batch is kept in the
// buffer as soon as it is cut and leaves it only once the server acknowledged it, so a
// reload, a restart or an outage loses nothing (see README.md, "How delivery works").

import { type Delivery, deliver, type Transport } from "./delivery.js";
import {
  type EventFields, type EventInput, type FeedbackOptions, type TaskOutcome, type TaskResultOptions, feedbackEvent,
  prepareEvent, taskResultEvent,
} from "./events.js";
import { onPageHide, onProcessExit } from "./lifecycle.js";
import { type ClientOptions, type Settings, settle } from "./options.js";
import { type Batch, Pipeline, type Rejection, type Stats, utf8Length } from "./pipeline.js";
import { RetryPolicy } from "./retry.js";
import { type BatchStore, MemoryStore } from "./store.js";
import { Changed, keepAlive } from "./timers.js";

// Keepalive requests of a page may carry 64 KiB of bodies in all (the Fetch standard);
// what does not fit stays in the buffer for the next load.
const KEEPALIVE_BYTES = 64_000;

/** The buffer holds maxBufferEvents events and onFull is "raise". */
export class BufferFull extends Error {
  override name = "BufferFull";
}

/** The client was closed: it takes no more events. */
export class ClientClosed extends Error {
  override name = "ClientClosed";
}

export class Client {
  /** Resolves once the buffer's batches from before (a reload, a restart) are loaded and queued. */
  readonly ready: Promise<void>;
  private readonly settings: Settings;
  private readonly pipeline: Pipeline;
  private readonly transport: Transport;
  private readonly policy: RetryPolicy;
  private store: BatchStore;
  private readonly changed = new Changed();
  private readonly aborted = new AbortController();
  private readonly removals = new Set<Promise<void>>();
  private readonly worker: Promise<void>;
  private readonly unhook: Array<() => void> = [];
  private closing: Promise<void> | undefined;
  private finished = false; // the worker stopped (closed)
  private keepaliveBytes = 0;
  private outageLogged = false;

  constructor(options: ClientOptions) {
    this.settings = settle(options);
    const s = this.settings;
    this.store = s.buffer ?? new MemoryStore();
    this.policy = new RetryPolicy(s.maxRetries, s.backoffMs, s.maxBackoffMs);
    this.transport = { url: s.url, apiKey: s.apiKey, timeoutMs: s.timeoutMs, fetch: s.fetch };
    this.pipeline = new Pipeline({
      batchSize: s.batchSize, flushIntervalMs: s.flushIntervalMs, maxBatchBytes: s.maxBatchBytes,
      maxBufferEvents: s.maxBufferEvents, onFull: s.onFull, policy: this.policy,
      discard: (batch) => this.discard(batch),
    });
    this.ready = this.load();
    this.worker = this.ready.then(() => this.run());
    if (s.flushOnPageHide) this.unhook.push(onPageHide(() => this.pageHidden()));
    if (s.closeOnExit) this.unhook.push(onProcessExit(() => void this.close(), () => this.exiting()));
  }

  // -- the API ------------------------------------------------------------------------

  /** Queue an event of `type` (any registered event type); its event_id. */
  track<T extends string>(type: T, fields: EventFields<T>): string {
    return this.send({ ...fields, type } as EventInput<T>);
  }

  /** Queue an event, `{ type, ...fields }`; its event_id (made here when the event has none). */
  send<T extends string>(event: EventInput<T>): string {
    if (this.closing) throw new ClientClosed("the client is closed: it takes no more events");
    const { json, eventId } = prepareEvent(event);
    const bytes = utf8Length(json);
    if (bytes + 2 > this.settings.maxBatchBytes) {
      throw new RangeError(`the event is ${bytes} bytes as JSON, more than maxBatchBytes (${this.settings.maxBatchBytes})`);
    }
    if (!this.pipeline.makeRoom()) {
      throw new BufferFull(`the buffer holds ${this.settings.maxBufferEvents} events (onFull "raise")`);
    }
    if (this.pipeline.add(json, bytes, Date.now())) this.changed.notify();
    return eventId;
  }

  /** Send `rlaas.feedback` on an interaction (its X-Flywheel-Interaction-Id); the event_id. */
  feedback(interactionId: string, options: FeedbackOptions): string {
    return this.send(feedbackEvent(interactionId, options));
  }

  /** Send `rlaas.task_result`: how the task an interaction served ended; the event_id. */
  taskResult(interactionId: string, task: string, outcome: TaskOutcome, options: TaskResultOptions = {}): string {
    return this.send(taskResultEvent(interactionId, task, outcome, options));
  }

  /**
   * Send what waits now (trying the server now, even when offline). True once everything
   * was acknowledged (or rejected for good); false when the server is unavailable (the
   * events stay buffered) or `timeoutMs` passed.
   */
  async flush(timeoutMs?: number): Promise<boolean> {
    await this.ready;
    const release = keepAlive();
    try {
      const mark = this.pipeline.flush(Date.now());
      this.changed.notify();
      const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
      for (;;) {
        if (this.pipeline.idle()) return true;
        if (this.pipeline.gaveUp !== mark || this.finished) return false;
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await this.changed.next(Number.isFinite(left) ? left : undefined);
      }
    } finally {
      release();
    }
  }

  /**
   * Send what waits (for up to `timeoutMs`, default closeTimeoutMs), keep the rest in the
   * buffer, and stop. Runs by itself in Node when the event loop empties.
   */
  close(timeoutMs?: number): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs ?? this.settings.closeTimeoutMs);
    return this.closing;
  }

  get stats(): Stats {
    return this.pipeline.stats();
  }

  // -- the worker -----------------------------------------------------------------------

  private async load(): Promise<void> {
    try {
      this.pipeline.loaded(await this.store.load());
    } catch (error) {
      this.settings.logger.warn(`flywheel: cannot read the buffer (${this.store.description}); ` +
        "events are kept in memory only", error);
      this.store = new MemoryStore();
    }
  }

  private async run(): Promise<void> {
    try {
      await this.loop();
    } catch (error) { // a bug, not an outage: say so, and let close() finish
      this.settings.logger.warn("flywheel: the client stopped sending after an unexpected error", error);
    } finally {
      this.finished = true;
      this.changed.notify();
    }
  }

  private async loop(): Promise<void> {
    for (;;) {
      const step = this.pipeline.nextStep(Date.now());
      if (step.kind === "exit") return;
      if (step.kind === "wait") {
        await this.changed.next(step.ms);
        continue;
      }
      if (step.kind === "store") await this.keep(step.batches);
      else await this.sendHead(step.batch, step.retries);
      await Promise.all(this.removals);
      this.changed.notify();
    }
  }

  /** Write batches to the buffer; one the buffer refuses (full, broken) is sent from memory. */
  private async keep(batches: Batch[]): Promise<void> {
    for (const batch of batches) batch.storing = true;
    for (const batch of batches) {
      try {
        await this.store.add(batch);
        this.pipeline.stored(batch, true);
      } catch (error) {
        this.pipeline.stored(batch, false);
        this.settings.logger.warn(`flywheel: cannot write a batch to the buffer (${this.store.description}); ` +
          `its ${batch.count} events are in memory only`, error);
      }
    }
    this.changed.notify(); // the worker may be waiting for a write started at page hide
  }

  private async sendHead(batch: Batch, retries: number): Promise<void> {
    const delivery = await deliver(this.transport, batch.body, batch.key, this.policy,
                                   { retries, signal: this.aborted.signal });
    await this.settle(batch, delivery);
  }

  private async settle(batch: Batch, delivery: Delivery): Promise<void> {
    if (delivery.kind === "too_large" && batch.count > 1) {
      // The halves are kept before the whole is forgotten: a crash in between sends both.
      const halves = this.pipeline.split(batch);
      await this.keep(halves);
      this.discard(batch);
      return;
    }
    const final = delivery.kind === "too_large" ? { ...delivery, kind: "rejected" as const } : delivery;
    this.report(this.pipeline.finish(batch, final, Date.now()));
    this.logAvailability(final);
  }

  private discard(batch: Batch): void {
    if (!batch.stored && !batch.storing) return;
    const removal: Promise<void> = this.store.remove(batch).catch((error) => {
      this.settings.logger.warn(`flywheel: cannot remove a sent batch from the buffer (${this.store.description}); ` +
        "it will be sent again, and recognised by the server", error);
    }).finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }

  private report(rejections: Rejection[]): void {
    if (!rejections.length) return;
    if (!this.settings.onRejected) {
      const first = rejections[0]!;
      this.settings.logger.warn(`flywheel: the server rejected ${rejections.length} event(s), e.g. ` +
        `${first.eventId}: ${first.message} (${first.code})`);
      return;
    }
    try {
      this.settings.onRejected(rejections);
    } catch (error) {
      this.settings.logger.warn("flywheel: onRejected threw", error);
    }
  }

  private logAvailability(delivery: Delivery): void {
    if (delivery.kind === "unavailable" && !this.outageLogged && !this.aborted.signal.aborted) {
      this.outageLogged = true; // loud once per outage
      this.settings.logger.warn(`flywheel: the server is unavailable (${delivery.message}); ` +
        `${this.pipeline.buffered} events wait in the buffer (${this.store.description})`);
    } else if (delivery.kind !== "unavailable" && this.outageLogged) {
      this.outageLogged = false;
      this.settings.logger.info("flywheel: the server is reachable again; sending what waited");
    }
  }

  // -- going away -------------------------------------------------------------------------

  private async shutdown(timeoutMs: number): Promise<void> {
    const release = keepAlive();
    try {
      await this.ready;
      this.pipeline.closing = true;
      this.changed.notify();
      const deadline = setTimeout(() => this.aborted.abort(), timeoutMs);
      await this.worker;
      clearTimeout(deadline);
      await Promise.all(this.removals);
      this.countLost();
      for (const unhook of this.unhook.splice(0)) unhook();
      await this.store.close();
    } finally {
      release();
    }
  }

  /** What never reached the server nor a buffer that lasts is lost: count it, say so. */
  private countLost(): void {
    const left = this.store.volatile ? [...this.pipeline.queue] : this.pipeline.queue.filter((b) => b.unstorable);
    const lost = left.reduce((sum, b) => sum + b.count, 0);
    if (lost) {
      this.pipeline.abandon(left);
      this.settings.logger.warn(`flywheel: ${lost} events were not sent (the server is unavailable) and could ` +
        "not be kept (no buffer, or writing to it failed)");
    }
  }

  /** The process is exiting: no more turns of the event loop, so write what is not kept yet, synchronously. */
  private exiting(): void {
    this.keepNow(this.pipeline.unstored());
    this.store.closeSync?.();
  }

  /** The page is hidden or going away: keep what waits and send what fits, with fetch keepalive. */
  private pageHidden(): void {
    if (this.closing) return;
    const picked = this.pipeline.forPageHide(KEEPALIVE_BYTES - this.keepaliveBytes);
    this.keepNow(this.pipeline.unstored());
    for (const batch of picked) void this.sendKeepalive(batch);
  }

  /**
   * Keep batches before this task ends, where the buffer can write synchronously (a file,
   * localStorage, IndexedDB's journal): an asynchronous write may never finish once the
   * page or the process is gone. Batches it cannot take that way are written as usual.
   */
  private keepNow(batches: Batch[]): void {
    const addSync = this.store.volatile ? undefined : this.store.addSync?.bind(this.store);
    const left = addSync ? batches.filter((batch) => !this.keptAtOnce(batch, addSync)) : batches;
    const idle = left.filter((batch) => !batch.storing);
    if (idle.length) void this.keep(idle);
  }

  private keptAtOnce(batch: Batch, addSync: (batch: Batch) => void): boolean {
    try {
      addSync(batch);
      this.pipeline.stored(batch, true);
      return true;
    } catch {
      return false; // full (localStorage's quota) or failing: written as usual, if there is time
    }
  }

  private async sendKeepalive(batch: Batch): Promise<void> {
    batch.sending = true;
    this.keepaliveBytes += batch.bytes;
    try {
      const delivery = await deliver(this.transport, batch.body, batch.key, this.policy,
                                     { retries: 0, signal: this.aborted.signal, keepalive: true });
      // The page is still there (it was only hidden): account for it as for any send.
      if (delivery.kind === "unavailable") this.pipeline.release(batch);
      else await this.settle(batch, delivery);
    } finally {
      this.keepaliveBytes -= batch.bytes;
      this.changed.notify();
    }
  }
}
