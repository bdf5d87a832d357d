// The offline buffer in Node: a folder, one file per batch (the Python SDK's layout).
//
// A file is named `<seq>-<count>-<key>.json` and holds the exact request body: `seq`
// orders the files, `count` is known without reading them, `key` is the batch's
// Idempotency-Key. A file is written to a temporary name, fsynced, renamed into place and
// the folder fsynced, so after a crash a batch file is either whole or absent. It is
// removed only once the server acknowledged the batch (or rejected it for good); a
// removal lost in a crash only means the batch is sent again under its key, which the
// server recognises.
//
// One client per folder: two clients draining one folder would send each batch twice.
// Node has no flock, so `.lock` holds the owner's pid and is touched every 10 s; a lock
// whose process is gone, or that nobody touched for 30 s, is stale and taken over.

import {
  closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync,
  utimesSync, writeFileSync, writeSync,
} from "node:fs";
import { open, readFile, readdir, rename, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { BatchStore, StoredBatch } from "./store.js";
import { uuid4 } from "./uuid.js";

const NAME = /^(\d{16,})-(\d{1,9})-([0-9a-f]{32})\.json$/;
const HEARTBEAT_MS = 10_000;
const STALE_MS = 30_000;
const heldHere = new Set<string>(); // tokens of the locks this process holds

/** Another client (in this process or another one) uses this buffer folder. */
export class BufferLocked extends Error {
  override name = "BufferLocked";
}

function fileName(batch: StoredBatch): string {
  return `${batch.seq}-${batch.count}-${batch.key}.json`;
}

export class FileBuffer implements BatchStore {
  readonly description: string;
  private readonly lockPath: string;
  private readonly token = uuid4();
  private heartbeat: ReturnType<typeof setInterval> | undefined;

  /** Takes the folder (created if missing) for this client; throws BufferLocked if another one has it. */
  constructor(readonly folder: string) {
    this.description = `folder ${folder}`;
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    this.lockPath = join(folder, ".lock");
    this.lock();
    for (const name of readdirSync(folder)) {
      // A write a crash interrupted: never acknowledged, never whole.
      if (name.startsWith(".tmp-") || name.startsWith(".lock-")) unlinkSync(join(folder, name));
    }
  }

  async load(): Promise<StoredBatch[]> {
    const found: StoredBatch[] = [];
    for (const name of await readdir(this.folder)) {
      const match = NAME.exec(name);
      if (!match) {
        if (!name.startsWith(".")) console.warn(`flywheel: ignoring ${name} in the buffer folder (not a batch file)`);
        continue;
      }
      try {
        const body = await readFile(join(this.folder, name), "utf8");
        found.push({ seq: match[1]!, count: Number(match[2]), key: match[3]!, body });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error; // removed by hand meanwhile
      }
    }
    return found.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  }

  async add(batch: StoredBatch): Promise<void> {
    const partial = join(this.folder, `.tmp-${batch.seq}-${batch.key}`);
    const file = await open(partial, "w", 0o600);
    try {
      await file.writeFile(batch.body, "utf8");
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(partial, join(this.folder, fileName(batch)));
    const folder = await open(this.folder, "r");
    try {
      await folder.sync(); // the rename itself is durable
    } finally {
      await folder.close();
    }
  }

  /** `add` with blocking calls, for a process that is exiting (no more turns of the event loop). */
  addSync(batch: StoredBatch): void {
    const partial = join(this.folder, `.tmp-${batch.seq}-${batch.key}`);
    const fd = openSync(partial, "w", 0o600);
    try {
      const bytes = Buffer.from(batch.body, "utf8");
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(partial, join(this.folder, fileName(batch)));
    const folder = openSync(this.folder, "r");
    try {
      fsyncSync(folder);
    } finally {
      closeSync(folder);
    }
  }

  async remove(batch: StoredBatch): Promise<void> {
    // No fsync of the folder: a removal lost in a crash only sends the batch again, under its key.
    await unlink(join(this.folder, fileName(batch))).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  closeSync(): void {
    if (this.heartbeat === undefined) return;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    heldHere.delete(this.token);
    if (this.lockOwner()?.token === this.token) unlinkSync(this.lockPath);
  }

  // -- the lock -----------------------------------------------------------------------

  private lock(): void {
    if (!this.createLock()) {
      const locked = new BufferLocked(`${this.folder} is in use by another Flywheel client (${this.lockPath})`);
      if (!this.stale()) throw locked;
      unlinkSync(this.lockPath); // its owner is gone: take it over
      if (!this.createLock()) throw locked; // another client took it over first
    }
    heldHere.add(this.token);
    this.heartbeat = setInterval(() => {
      const now = new Date();
      try {
        utimesSync(this.lockPath, now, now);
      } catch {
        // removed by hand: the next client will take the folder
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Create `.lock` with its content in one step (a hard link fails if it exists): false if it exists. */
  private createLock(): boolean {
    const draft = join(this.folder, `.lock-${this.token}`);
    writeFileSync(draft, JSON.stringify({ pid: process.pid, host: hostname(), token: this.token }), { mode: 0o600 });
    try {
      linkSync(draft, this.lockPath);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    } finally {
      unlinkSync(draft);
    }
  }

  private lockOwner(): { pid: number; host: string; token: string } | undefined {
    try {
      return JSON.parse(readFileSync(this.lockPath, "utf8"));
    } catch {
      return undefined;
    }
  }

  private stale(): boolean {
    const owner = this.lockOwner();
    let touched: number;
    try {
      touched = statSync(this.lockPath).mtimeMs;
    } catch {
      return true;
    }
    if (!owner || Date.now() - touched > STALE_MS) return true;
    if (owner.host !== hostname()) return false; // another machine's: only time tells
    // Our own pid: a client of this process, or a previous process that had the same pid
    // (a container's pid 1 after a restart).
    if (owner.pid === process.pid) return !heldHere.has(owner.token);
    try {
      process.kill(owner.pid, 0); // signal 0: does the process exist?
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  }
}

/** The offline buffer for Node: batch files in `folder` (one folder per process). */
export function fileBuffer(folder: string): FileBuffer {
  return new FileBuffer(folder);
}
