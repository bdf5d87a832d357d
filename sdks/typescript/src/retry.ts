// How long to wait before trying a batch again.
//
// Exponential backoff with full jitter (a random wait between 0 and
// min(maxBackoff, backoff * 2^n)): many clients that failed at the same moment do not
// come back in step. A `Retry-After` answer (delta-seconds or an HTTP date, RFC 9110
// section 10.2.3) is the least wait.

export class RetryPolicy {
  constructor(readonly maxRetries = 5, readonly backoffMs = 500, readonly maxBackoffMs = 30_000) {}

  /** Milliseconds before retry number `retry` (0 is the first retry). */
  delay(retry: number, retryAfterMs?: number): number {
    const ceiling = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** Math.min(retry, 60));
    return Math.max(Math.random() * ceiling, retryAfterMs ?? 0);
  }

  /**
   * Milliseconds offline before trying the server again, after `failures` deliveries in a
   * row gave up. Half fixed, half jitter ("equal jitter"): a probe never comes right after
   * the last one, and clients that lost the same server still spread out.
   */
  probeDelay(failures: number, retryAfterMs?: number): number {
    const ceiling = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** Math.min(failures, 60));
    return Math.max(ceiling / 2 + Math.random() * (ceiling / 2), retryAfterMs ?? 0);
  }
}

const DAY_MS = 86_400_000;
const DELTA_SECONDS = /^-?\d+(\.\d+)?$/;
const IMF_OR_RFC850 = /^[A-Za-z]{3,9}, .+ GMT$/; // "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 ..."
const ASCTIME = /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/; // "Sun Nov  6 08:49:37 1994", GMT

function parseHttpDate(text: string): number {
  // Date.parse reads a date without a zone as local time; asctime dates are GMT.
  if (IMF_OR_RFC850.test(text)) return Date.parse(text);
  if (ASCTIME.test(text)) return Date.parse(`${text} GMT`);
  return Number.NaN;
}

/** Retry-After in milliseconds: "5" or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  let ms: number;
  if (DELTA_SECONDS.test(text)) {
    ms = Number(text) * 1000;
  } else {
    const when = parseHttpDate(text);
    if (Number.isNaN(when)) return undefined;
    ms = when - now;
  }
  return Math.min(Math.max(ms, 0), DAY_MS);
}
