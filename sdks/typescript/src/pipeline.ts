// The client's state, without I/O: which events wait, which batch goes next, what is full.
//
// The client's worker asks `nextStep()` what to do, does it (store batches, send one,
// wait) and reports back; `track()` calls `add()`. Everything runs on one thread (the
// event loop), so there are no locks: a method runs to its end before anything else.
//
// - Events wait in `pending` until `batchSize` of them (or `maxBatchBytes`) make a batch,
//   or the oldest has waited `flushIntervalMs`.
// - A batch is kept in the store as soon as it is cut, before it is sent, and leaves it
//   only once the server acknowledged it (or rejected it for good).
// - Batches go out one at a time, oldest first. When a delivery gives up (the server is
//   unavailable) the client is offline: the oldest batch is tried again after a growing
//   pause, once each time, while new batches go to the store.
// - `buffered` counts every event not acknowledged yet. Past `maxBufferEvents` the
//   `onFull` policy applies.

import type { Delivery } from "./delivery.js";
import type { RetryPolicy } from "./retry.js";
import { SeqClock, type StoredBatch } from "./store.js";
import { newKey } from "./uuid.js";

export const MAX_BATCH_EVENTS = 10_000; // the server's limit for one request
export type OnFull = "drop_oldest" | "raise";

export interface Batch extends StoredBatch {
  bytes: number; // the body's size in UTF-8
  stored: boolean; // in the store
  storing: boolean; // being written to the store
  sending: boolean; // being sent: never dropped or sent again meanwhile
  unstorable: boolean; // the store refused it (quota, disk full): it stays in memory only
}

export interface Stats {
  sent: number; // events the server acknowledged (accepted, or stored before: `duplicate`)
  duplicate: number;
  buffered: number; // events not acknowledged yet: waiting, being sent, or in the store
  dropped: number; // events given up by the onFull policy
  retried: number; // requests sent again after a failed try
  rejected: number; // events the server refused (see onRejected)
}

/** An event the server refused, and why. `status` 200: refused alone, in an accepted batch. */
export interface Rejection {
  event: Record<string, unknown> | undefined;
  eventId: string | undefined;
  code: string;
  message: string;
  field?: string | null;
  status?: number;
}

export type Step =
  | { kind: "store"; batches: Batch[] }
  | { kind: "send"; batch: Batch; retries: number }
  | { kind: "wait"; ms?: number }
  | { kind: "exit" };

export interface PipelineOptions {
  batchSize: number;
  flushIntervalMs: number;
  maxBatchBytes: number;
  maxBufferEvents: number;
  onFull: OnFull;
  policy: RetryPolicy;
  /** Called for every batch that leaves the queue (acknowledged, rejected, dropped): remove it from the store. */
  discard: (batch: Batch) => void;
}

type Counted = Exclude<keyof Stats, "buffered">;
const encoder = new TextEncoder();

export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

export class Pipeline {
  readonly queue: Batch[] = [];
  buffered = 0;
  gaveUp = 0; // deliveries that gave up, ever: flush() stops waiting when it moves
  closing = false;
  private readonly counts: Record<Counted, number> =
    { sent: 0, duplicate: 0, dropped: 0, retried: 0, rejected: 0 };
  private pending: string[] = [];
  private pendingBytes = 2;
  private pendingSince = 0;
  private offlineUntil: number | undefined;
  private failures = 0; // deliveries in a row that gave up
  private flushNow = false;
  private readonly seq = new SeqClock();

  constructor(private readonly options: PipelineOptions) {}

  stats(): Stats {
    return { ...this.counts, buffered: this.buffered };
  }

  idle(): boolean {
    return this.pending.length === 0 && this.queue.length === 0;
  }

  /** Batches the store kept from before (a reload, a restart): older than anything queued since. */
  loaded(batches: StoredBatch[]): void {
    const old = batches.map((b) => ({ ...b, bytes: utf8Length(b.body), stored: true, storing: false,
                                       sending: false, unstorable: false }));
    for (const batch of old) this.seq.seen(batch.seq);
    this.queue.unshift(...old);
    this.buffered += old.reduce((sum, b) => sum + b.count, 0);
  }

  // -- callers --------------------------------------------------------------------

  /** True when there is room for one more event, false when it should be refused (onFull "raise"). */
  makeRoom(): boolean {
    while (this.buffered >= this.options.maxBufferEvents) {
      if (this.options.onFull === "raise") return false;
      if (!this.dropOldest()) return true; // everything is in flight: let it through rather than lose it
    }
    return true;
  }

  /** Queue one encoded event; true when the worker should look again (a batch or a timer began). */
  add(json: string, bytes: number, now: number): boolean {
    if (this.pending.length && this.pendingBytes + bytes + 1 > this.options.maxBatchBytes) this.cut();
    const first = this.pending.length === 0;
    if (first) this.pendingSince = now;
    this.pending.push(json);
    this.pendingBytes += bytes + 1;
    this.buffered += 1;
    if (this.pending.length >= this.options.batchSize) {
      this.cut();
      return true;
    }
    return first;
  }

  /** Send what waits now, and try the server now even if offline; the mark `gaveUp` moves from. */
  flush(now: number): number {
    this.flushNow = true;
    if (this.offlineUntil !== undefined) this.offlineUntil = now;
    return this.gaveUp;
  }

  // -- the worker -------------------------------------------------------------------

  nextStep(now: number): Step {
    if (this.pending.length && (this.closing || this.flushNow ||
        now - this.pendingSince >= this.options.flushIntervalMs)) this.cut();
    this.flushNow = false;
    const unstored = this.queue.filter((b) => !b.stored && !b.storing && !b.unstorable);
    if (unstored.length) {
      for (const batch of unstored) batch.storing = true;
      return { kind: "store", batches: unstored };
    }
    if (this.offlineUntil !== undefined && (this.closing || now < this.offlineUntil)) {
      return this.closing ? { kind: "exit" } : { kind: "wait", ...this.timer(now, this.offlineUntil) };
    }
    const head = this.queue[0];
    if (!head) return this.closing ? { kind: "exit" } : { kind: "wait", ...this.timer(now, undefined) };
    // A page-hide send has it, or its write (started then) has not finished: wait for that.
    if (head.sending || head.storing) return { kind: "wait", ...this.timer(now, undefined) };
    head.sending = true;
    // Offline, one try is the probe: its failure only pushes the next probe back.
    return { kind: "send", batch: head, retries: this.failures ? 0 : this.options.policy.maxRetries };
  }

  stored(batch: Batch, ok: boolean): void {
    batch.storing = false;
    if (ok) {
      batch.stored = true;
      batch.unstorable = false;
    } else if (!batch.stored) {
      batch.unstorable = true;
    }
  }

  /** Account for a delivery; the rejections to report. */
  finish(batch: Batch, delivery: Delivery, now: number): Rejection[] {
    batch.sending = false;
    this.counts.retried += delivery.retries;
    if (delivery.kind === "unavailable") {
      this.failures += 1;
      this.gaveUp += 1;
      this.offlineUntil = now + this.options.policy.probeDelay(this.failures - 1, delivery.retryAfterMs);
      return [];
    }
    this.failures = 0;
    this.offlineUntil = undefined;
    if (!this.queue.includes(batch)) return []; // settled already (by a page-hide send of it)
    this.remove(batch);
    if (delivery.kind === "ok") return this.acknowledged(batch, delivery);
    this.counts.rejected += batch.count;
    const code = delivery.code || (delivery.status ? `http_${delivery.status}` : "rejected");
    return eventsOf(batch).map((event) => rejection(event, code, delivery.message, null, delivery.status));
  }

  /** A page-hide send that did not get through: the batch is the worker's again. */
  release(batch: Batch): void {
    batch.sending = false;
  }

  /** A batch the server found too large (413) goes out as its two halves (new keys), in its place. */
  split(batch: Batch): Batch[] {
    batch.sending = false;
    this.failures = 0;
    this.offlineUntil = undefined;
    const events = splitArray(batch.body);
    const middle = Math.floor(events.length / 2);
    const halves = [events.slice(0, middle), events.slice(middle)].map((part, digit) =>
      this.batchOf(part, `${batch.seq}${digit}`));
    this.queue.splice(this.queue.indexOf(batch), 1, ...halves);
    return halves; // the caller keeps them, then discards `batch`
  }

  /** Give batches up (at close, when they cannot be kept): counted as dropped. */
  abandon(batches: Batch[]): void {
    for (const batch of [...batches]) {
      this.remove(batch);
      this.counts.dropped += batch.count;
    }
  }

  /** Cut what waits into a batch and list the batches not in the store yet (a process exiting). */
  unstored(): Batch[] {
    if (this.pending.length) this.cut();
    return this.queue.filter((b) => !b.stored && !b.unstorable);
  }

  /** Cut what waits, and pick the oldest batches not being sent whose bodies fit in `budget` bytes. */
  forPageHide(budget: number): Batch[] {
    if (this.pending.length) this.cut();
    const picked = [];
    for (const batch of this.queue) {
      if (batch.sending) continue; // being sent already; if the page goes, it stays in the store
      if (batch.bytes > budget) break; // keep the order: a later batch does not overtake
      budget -= batch.bytes;
      picked.push(batch);
    }
    return picked;
  }

  // -- inside ---------------------------------------------------------------------------

  private timer(now: number, until: number | undefined): { ms?: number } {
    const due = this.pending.length ? this.pendingSince + this.options.flushIntervalMs : undefined;
    const deadlines = [until, due].filter((t): t is number => t !== undefined);
    return deadlines.length ? { ms: Math.max(0, Math.min(...deadlines) - now) } : {};
  }

  private cut(): void {
    this.queue.push(this.batchOf(this.pending, this.seq.next()));
    this.pending = [];
    this.pendingBytes = 2;
  }

  private batchOf(events: string[], seq: string): Batch {
    const body = `[${events.join(",")}]`;
    return { seq, key: newKey(), count: events.length, body, bytes: utf8Length(body), stored: false,
             storing: false, sending: false, unstorable: false };
  }

  private remove(batch: Batch): void {
    const at = this.queue.indexOf(batch);
    if (at < 0) return;
    this.queue.splice(at, 1);
    this.buffered -= batch.count;
    this.options.discard(batch);
  }

  private dropOldest(): boolean {
    const batch = this.queue.find((b) => !b.storing && !b.sending);
    if (batch) {
      this.remove(batch);
      this.counts.dropped += batch.count;
      return true;
    }
    if (this.pending.length) {
      this.pendingBytes -= utf8Length(this.pending.shift()!) + 1;
      this.buffered -= 1;
      this.counts.dropped += 1;
      return true;
    }
    return false;
  }

  private acknowledged(batch: Batch, delivery: Delivery): Rejection[] {
    const result = delivery.result;
    if (!result) {
      this.counts.sent += batch.count;
      return [];
    }
    this.counts.sent += result.accepted + result.duplicate;
    this.counts.duplicate += result.duplicate;
    this.counts.rejected += result.rejected;
    if (!result.errors?.length) return [];
    const events = eventsOf(batch);
    return result.errors.map((e) => rejection(events[e.index], e.code, e.message, e.field ?? null, 200));
  }
}

/**
 * The elements of a JSON array as the exact text they have in it. Parsing and encoding
 * them again would change what the caller sent (integers past 2^53, for one).
 */
export function splitArray(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let inString = false;
  let start = 1;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") {
      depth--;
      if (depth === 0 && body.slice(start, i).trim()) parts.push(body.slice(start, i).trim());
    } else if (c === "," && depth === 1) {
      parts.push(body.slice(start, i).trim());
      start = i + 1;
    }
  }
  return parts;
}

function eventsOf(batch: Batch): unknown[] {
  try {
    const events = JSON.parse(batch.body);
    if (Array.isArray(events)) return events;
  } catch {
    // a body that is not a JSON array: report the count, not the events
  }
  return Array.from({ length: batch.count }, () => undefined);
}

function rejection(event: unknown, code: string, message: string, field: string | null,
                   status: number | undefined): Rejection {
  const record = event && typeof event === "object" ? (event as Record<string, unknown>) : undefined;
  const eventId = typeof record?.event_id === "string" ? record.event_id : undefined;
  return { event: record, eventId, code, message, field, ...(status === undefined ? {} : { status }) };
}
