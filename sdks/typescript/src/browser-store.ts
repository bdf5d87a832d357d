// The offline buffer in a browser (a page, a web worker, an extension's service worker).
//
// IndexedDB first: it is in every context, holds far more than localStorage, and a
// transaction with `durability: "strict"` is on disk when it completes. localStorage is
// the fallback where IndexedDB cannot be opened (some private modes, some embedded
// views): synchronous, about 5 MB per origin, not in workers. `browserBuffer(name)`
// picks the first that works when the client loads it.
//
// Tabs of one origin share the buffer. A batch another open tab is sending may be sent
// by a second tab too (on its load); the server stores it once (same Idempotency-Key,
// same body, same event ids), so this costs a request, never a duplicate.

import type { BatchStore, StoredBatch } from "./store.js";

const DATABASE = "flywheel-sdk";
const OBJECTS = "batches"; // keyed by [buffer name, seq]: one object store for every buffer name

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/**
 * Batches in IndexedDB. A write started while the page goes away may never complete
 * (Chromium drops it with the page), so what must be kept at that moment goes to
 * localStorage instead, synchronously (`addSync`, the journal): loading moves it into
 * IndexedDB. Where there is no localStorage (a service worker), there is no page to hide.
 */
export class IndexedDBStore implements BatchStore {
  readonly description: string;
  private db: IDBDatabase | undefined;
  private readonly journal: LocalStorageStore | undefined;
  /** Into the journal (localStorage), when there is one. */
  readonly addSync?: (batch: StoredBatch) => void;

  constructor(readonly name: string) {
    this.description = `IndexedDB ${DATABASE}/${OBJECTS}[${name}]`;
    this.journal = typeof localStorage === "undefined" ? undefined : new LocalStorageStore(name);
    if (this.journal) this.addSync = (batch) => this.journal!.addSync(batch);
  }

  async load(): Promise<StoredBatch[]> {
    const open = indexedDB.open(DATABASE, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(OBJECTS, { keyPath: ["name", "seq"] });
    this.db = await request(open);
    const tx = this.db.transaction(OBJECTS, "readonly");
    const range = IDBKeyRange.bound([this.name, ""], [this.name, "\uffff"]);
    const rows: StoredBatch[] = await request(tx.objectStore(OBJECTS).getAll(range)); // in key order: by seq
    const kept = rows.map(({ seq, key, count, body }) => ({ seq, key, count, body }));
    const journaled = (await this.journal?.load()) ?? [];
    if (!journaled.length) return kept;
    const known = new Set(kept.map((b) => b.seq));
    const moved = journaled.filter((b) => !known.has(b.seq));
    const write = this.transaction();
    for (const batch of moved) write.objectStore(OBJECTS).put({ name: this.name, ...batch });
    await done(write);
    for (const batch of journaled) await this.journal!.remove(batch);
    return [...kept, ...moved].sort(bySeq);
  }

  async add(batch: StoredBatch): Promise<void> {
    const tx = this.transaction();
    tx.objectStore(OBJECTS).put({ name: this.name, ...batch });
    await done(tx);
  }

  async remove(batch: StoredBatch): Promise<void> {
    await this.journal?.remove(batch); // it may be in the journal too (kept as the page was hidden)
    const tx = this.transaction();
    tx.objectStore(OBJECTS).delete([this.name, batch.seq]);
    await done(tx);
  }

  async close(): Promise<void> {
    this.db?.close();
  }

  private transaction(): IDBTransaction {
    if (!this.db) throw new Error("the buffer is not loaded");
    // "strict": complete means on disk, not only handed to the OS (Chrome's default is "relaxed").
    return this.db.transaction(OBJECTS, "readwrite", { durability: "strict" });
  }
}

function bySeq(a: StoredBatch, b: StoredBatch): number {
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

export class LocalStorageStore implements BatchStore {
  readonly description: string;
  private readonly prefix: string;

  constructor(readonly name: string, private readonly storage: Storage = globalThis.localStorage) {
    this.prefix = `flywheel-sdk:${name}:`;
    this.description = `localStorage ${this.prefix}*`;
  }

  async load(): Promise<StoredBatch[]> {
    const found: StoredBatch[] = [];
    for (let i = 0; i < this.storage.length; i++) {
      const name = this.storage.key(i);
      if (!name?.startsWith(this.prefix)) continue;
      try {
        const { key, count, body } = JSON.parse(this.storage.getItem(name) ?? "");
        found.push({ seq: name.slice(this.prefix.length), key, count, body });
      } catch {
        console.warn(`flywheel: ignoring ${name} in localStorage (not a batch)`);
      }
    }
    return found.sort(bySeq);
  }

  async add(batch: StoredBatch): Promise<void> {
    this.addSync(batch);
  }

  addSync(batch: StoredBatch): void {
    const { seq, ...rest } = batch;
    this.storage.setItem(this.prefix + seq, JSON.stringify(rest)); // throws QuotaExceededError when full
  }

  async remove(batch: StoredBatch): Promise<void> {
    this.storage.removeItem(this.prefix + batch.seq);
  }

  async close(): Promise<void> {}
}

/** IndexedDB, else localStorage, chosen when the client loads the buffer. */
export class BrowserBuffer implements BatchStore {
  private inner: BatchStore | undefined;
  // Until the store is open, what must be kept at once goes where IndexedDB's journal is.
  private readonly journal: LocalStorageStore | undefined;

  constructor(readonly name = "default") {
    if (!/^[\w.-]{1,100}$/.test(name)) throw new TypeError("a buffer name is 1-100 letters, digits, '.', '-', '_'");
    this.journal = typeof localStorage === "undefined" ? undefined : new LocalStorageStore(name);
  }

  get description(): string {
    return this.inner?.description ?? `browser buffer ${this.name} (not loaded)`;
  }

  async load(): Promise<StoredBatch[]> {
    if (typeof indexedDB !== "undefined") {
      const idb = new IndexedDBStore(this.name);
      try {
        const batches = await idb.load();
        this.inner = idb;
        return batches;
      } catch (error) {
        console.warn("flywheel: IndexedDB is unavailable, buffering in localStorage", error);
      }
    }
    if (typeof localStorage === "undefined") {
      throw new Error("neither IndexedDB nor localStorage is available here: no offline buffer");
    }
    this.inner = new LocalStorageStore(this.name);
    return this.inner.load();
  }

  add(batch: StoredBatch): Promise<void> {
    return this.loaded().add(batch);
  }

  remove(batch: StoredBatch): Promise<void> {
    return this.loaded().remove(batch);
  }

  get addSync(): ((batch: StoredBatch) => void) | undefined {
    const store = this.inner ?? this.journal;
    return store?.addSync?.bind(store);
  }

  close(): Promise<void> {
    return this.inner?.close() ?? Promise.resolve();
  }

  private loaded(): BatchStore {
    if (!this.inner) throw new Error("the buffer is not loaded");
    return this.inner;
  }
}

/** The offline buffer for browsers: IndexedDB, else localStorage, under `name` (one per app). */
export function browserBuffer(name = "default"): BatchStore {
  return new BrowserBuffer(name);
}
