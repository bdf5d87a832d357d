// The client's settings, with their defaults (the Python SDK's, in milliseconds), checked once.

import { MAX_BATCH_EVENTS, type OnFull, type Rejection } from "./pipeline.js";
import type { BatchStore } from "./store.js";

export interface Logger {
  warn(...args: unknown[]): void;
  info(...args: unknown[]): void;
}

export interface ClientOptions {
  /** The server, e.g. "https://flywheel.example.com". */
  url: string;
  /** An API key with the `ingest` scope (in a browser, give it no other scope: every user can read it). */
  apiKey: string;
  /** Where batches wait for the server: browserBuffer(name), new FileBuffer(folder) (Node); default memory. */
  buffer?: BatchStore;
  /** A batch goes out when this many events wait (at most 10,000, the server's limit). */
  batchSize?: number;
  /** ... or when the oldest waiting event has waited this long. */
  flushIntervalMs?: number;
  /** ... or when the next event would make the body larger (the server takes 16 MiB). */
  maxBatchBytes?: number;
  /** Events not acknowledged yet (waiting, in flight, in the buffer) the client holds. */
  maxBufferEvents?: number;
  /** Past maxBufferEvents: drop the oldest batch, or throw BufferFull from track(). */
  onFull?: OnFull;
  timeoutMs?: number;
  /** Retries of a batch before the server counts as unavailable. */
  maxRetries?: number;
  /** The backoff's first ceiling and its cap. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How long close() tries to send what waits; what is left stays in the buffer. */
  closeTimeoutMs?: number;
  /** Events the server refused; without it they are logged. */
  onRejected?: (rejections: Rejection[]) => void;
  /** Browsers: send what waits when the page is hidden or goes away (fetch keepalive). */
  flushOnPageHide?: boolean;
  /** Node: close() when the event loop empties, and keep what is left in the buffer at exit. */
  closeOnExit?: boolean;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  logger?: Logger;
}

export type Settings = Required<Omit<ClientOptions, "buffer" | "onRejected">> &
  Pick<ClientOptions, "buffer" | "onRejected">;

export const DEFAULTS = {
  batchSize: 500,
  flushIntervalMs: 1000,
  maxBatchBytes: 1 << 20,
  maxBufferEvents: 100_000,
  onFull: "drop_oldest",
  timeoutMs: 10_000,
  maxRetries: 5,
  backoffMs: 500,
  maxBackoffMs: 30_000,
  closeTimeoutMs: 10_000,
  flushOnPageHide: true,
  closeOnExit: true,
} as const;

export function settle(options: ClientOptions): Settings {
  const s = { ...DEFAULTS, fetch: options.fetch ?? globalThis.fetch?.bind(globalThis), logger: console,
              ...withoutUndefined(options) } as Settings;
  const problems = ([
    [/^https?:\/\/[^/]/.test(s.url ?? ""), "url is an http(s) URL"],
    [typeof s.apiKey === "string" && s.apiKey.length > 0 && !/[\r\n]/.test(s.apiKey), "apiKey is the key's secret"],
    [s.batchSize >= 1 && s.batchSize <= MAX_BATCH_EVENTS, `batchSize is 1 to ${MAX_BATCH_EVENTS}`],
    [s.flushIntervalMs > 0, "flushIntervalMs is positive"],
    [s.maxBatchBytes >= 1024, "maxBatchBytes is at least 1024"],
    [s.maxBufferEvents >= s.batchSize, "maxBufferEvents is at least batchSize"],
    [s.onFull === "drop_oldest" || s.onFull === "raise", "onFull is \"drop_oldest\" or \"raise\""],
    [s.timeoutMs > 0, "timeoutMs is positive"],
    [Number.isInteger(s.maxRetries) && s.maxRetries >= 0, "maxRetries is an integer >= 0"],
    [s.backoffMs > 0 && s.backoffMs <= s.maxBackoffMs, "0 < backoffMs <= maxBackoffMs"],
    [s.closeTimeoutMs >= 0, "closeTimeoutMs is >= 0"],
    [typeof s.fetch === "function", "fetch is missing (Node 18+, or pass options.fetch)"],
  ] as const).filter(([ok]) => !ok).map(([, message]) => message);
  if (problems.length) throw new TypeError(problems.join("; "));
  return { ...s, url: s.url.replace(/\/+$/, "") };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
