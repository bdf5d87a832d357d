// Where batches wait until the server acknowledges them.
//
// A batch is kept as the exact request body under its Idempotency-Key: after a reload or
// a restart it goes out as the same bytes under the same key, which is what lets the
// server recognise a batch it already stored (its idempotency record hashes the body).
// `seq` orders batches (16 digits, so names sort as numbers; a split batch's halves
// append a digit and sort in its place).
//
// Implementations: MemoryStore (the default: survives nothing), FileBuffer in Node
// (`@flywheel/sdk/node`), IndexedDBStore and LocalStorageStore in browsers
// (`browserBuffer()` picks one).

export interface StoredBatch {
  seq: string;
  key: string; // the Idempotency-Key
  count: number; // events in it, known without parsing the body
  body: string; // the JSON array sent as is
}

export interface BatchStore {
  /** Says where the batches are, for log lines. */
  readonly description: string;
  /** True when nothing survives the client (MemoryStore): what is left at close is lost. */
  readonly volatile?: boolean;
  /** Every batch kept, oldest first. Called once, before anything else. */
  load(): Promise<StoredBatch[]>;
  /** Keep a batch; durable once the promise resolves. */
  add(batch: StoredBatch): Promise<void>;
  /** Forget a batch the server acknowledged or rejected for good. */
  remove(batch: StoredBatch): Promise<void>;
  /** Keep a batch at once, where the platform can (a process exiting, a page going away). */
  addSync?(batch: StoredBatch): void;
  close(): Promise<void>;
  /** Release what close() releases, synchronously (a process exiting). */
  closeSync?(): void;
}

/** Keeps nothing: batches live as long as the client. */
export class MemoryStore implements BatchStore {
  readonly description = "memory";
  readonly volatile = true;

  async load(): Promise<StoredBatch[]> {
    return [];
  }

  async add(): Promise<void> {}

  async remove(): Promise<void> {}

  async close(): Promise<void> {}
}

export const SEQ_DIGITS = 16;

/**
 * Sequence numbers that grow across restarts without reading the buffer first: the
 * clock in microseconds, or one more than the last one given. A clock set back only
 * changes the order batches are sent in, never what is sent.
 */
export class SeqClock {
  private last = 0;

  next(): string {
    this.last = Math.max(this.last + 1, Date.now() * 1000);
    return String(this.last).padStart(SEQ_DIGITS, "0");
  }

  /** Never give out a number at or below one already in the buffer. */
  seen(seq: string): void {
    this.last = Math.max(this.last, Number(seq.slice(0, SEQ_DIGITS)));
  }
}
