// One batch, one `POST /v1/events`: what an answer means and when to try again.
//
// Every try of a batch carries the batch's `Idempotency-Key`. The server keeps the first
// answer for an (API key, Idempotency-Key) pair for 24 hours and replays it for the same
// body, so a batch it stored but whose answer was lost (a timeout, a dropped connection,
// a page that closed) is not stored twice; events are also deduplicated by `event_id`,
// which covers a batch older than that. The body is the exact string kept in the buffer:
// the server's idempotency record hashes it.
//
// What an answer means (the same table as the Python SDK's):
// - 2xx: acknowledged; its IngestResult lists the events rejected one by one.
// - network errors and timeouts, 408, 409 (the same key still running), 425, 429, 502,
//   503, 504: retried; after the last retry the server counts as unavailable and the
//   batch waits in the buffer.
// - 500: retried, but after the last retry the batch is rejected: a server that answers
//   yet fails on this batch every time would otherwise hold up every batch behind it.
// - 413: too large for the server; the client splits the batch.
// - any other 4xx (400, 401, 403, 422, ...): rejected at once, never retried.

import type { IngestResult } from "./generated/index.js";
import { type RetryPolicy, parseRetryAfter } from "./retry.js";
import { sleep } from "./timers.js";

export const PATH = "/v1/events";
const RETRIED = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
// A Retry-After longer than this is not slept through inside one delivery: the client
// goes offline until then, and batches wait in the buffer meanwhile.
export const MAX_INLINE_WAIT_MS = 60_000;

export type DeliveryKind = "ok" | "rejected" | "too_large" | "unavailable";

export interface Delivery {
  kind: DeliveryKind;
  status?: number;
  result?: IngestResult;
  message: string;
  code: string; // the server's error code ("unauthorized", "invalid_json", ...)
  retryAfterMs?: number;
  retries: number;
}

type Answer = Omit<Delivery, "kind" | "retries"> & { kind: DeliveryKind | "retry" };

export interface Transport {
  url: string; // the server's base URL, without a trailing slash
  apiKey: string;
  timeoutMs: number;
  fetch: typeof fetch;
}

/** What one HTTP answer means for the batch; kind "retry" means try again. */
export function classify(status: number, retryAfter: string | null, text: string): Answer {
  if (status >= 200 && status < 300) {
    const result = readResult(text); // a proxy's empty 2xx is an acknowledgement all the same
    return { kind: "ok", status, message: "", code: "", ...(result ? { result } : {}) };
  }
  const { code, message } = errorOf(text);
  const base = { status, code, message: message || `HTTP ${status}` };
  if (RETRIED.has(status)) {
    const retryAfterMs = parseRetryAfter(retryAfter);
    return { kind: "retry", ...base, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  return { kind: status === 413 ? "too_large" : "rejected", ...base };
}

function readResult(text: string): IngestResult | undefined {
  try {
    const body = JSON.parse(text);
    return body && typeof body.accepted === "number" ? (body as IngestResult) : undefined;
  } catch {
    return undefined;
  }
}

function errorOf(text: string): { code: string; message: string } {
  try {
    const body = JSON.parse(text);
    if (body && typeof body === "object") {
      return { code: String(body.code ?? "").slice(0, 100), message: String(body.message ?? "").slice(0, 500) };
    }
  } catch {
    // not JSON: a proxy's page
  }
  return { code: "", message: text.slice(0, 200).trim() };
}

export interface SendOptions {
  retries: number; // retries after the first try
  signal: AbortSignal; // aborts the waits and the request (the client is closing)
  keepalive?: boolean; // outlive the page (page hide); the body must be under 64 KiB
}

/** Send one batch, retrying up to `retries` times. Never throws. */
export async function deliver(transport: Transport, body: string, key: string, policy: RetryPolicy,
                              options: SendOptions): Promise<Delivery> {
  for (let done = 0; ; done++) {
    const answer = await tryOnce(transport, body, key, options);
    if (answer.kind !== "retry") return { ...answer, kind: answer.kind, retries: done };
    const wait = policy.delay(done, answer.retryAfterMs);
    if (done >= options.retries || wait > MAX_INLINE_WAIT_MS || options.signal.aborted) {
      return givenUp(answer, done);
    }
    if (!(await sleep(wait, options.signal))) return givenUp(answer, done);
  }
}

function givenUp(last: Answer, retries: number): Delivery {
  return { ...last, kind: last.status === 500 ? "rejected" : "unavailable", retries };
}

async function tryOnce(transport: Transport, body: string, key: string, options: SendOptions): Promise<Answer> {
  const request = new AbortController();
  const abort = () => request.abort();
  options.signal.addEventListener("abort", abort);
  const timer = setTimeout(abort, transport.timeoutMs);
  try {
    const response = await transport.fetch(transport.url + PATH, {
      method: "POST",
      body,
      headers: {
        Authorization: `Bearer ${transport.apiKey}`,
        "Content-Type": "application/json",
        "Idempotency-Key": key,
      },
      signal: request.signal,
      keepalive: options.keepalive ?? false,
      credentials: "omit", // the key is the credential; cookies of the page's site have no business here
    });
    return classify(response.status, response.headers.get("retry-after"), await response.text());
  } catch (error) {
    // The batch may have reached the server (a timeout after the body was sent): the
    // retry carries the same Idempotency-Key, and the server answers from its record.
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { kind: "retry", message: message.slice(0, 500), code: "" };
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener("abort", abort);
  }
}
