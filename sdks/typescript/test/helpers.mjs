// What the Node tests share: the server they run against, a fault-injecting proxy in front
// of it, and the report of sent event ids that tests/test_sdk_typescript.py checks in the
// database (each stored exactly once, nothing else stored).
//
// The Python test starts a real Flywheel and runs `node --test` with:
//   FLYWHEEL_URL, FLYWHEEL_KEY   the server and an API key of a fresh tenant
//   FLYWHEEL_REPORT              a file: one JSON line per test, {"test", "stored": [ids], "refused": [ids]}
//   FLYWHEEL_CONTROL             (offline tests) POST /stop and /start stop and start that server

import { appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";

export function env(...names) {
  const missing = names.filter((name) => !process.env[name]);
  if (missing.length) {
    throw new Error(`${missing.join(", ")} unset: these tests run against a real Flywheel, ` +
      "started by tests/test_sdk_typescript.py (cd ../.. && .venv/bin/pytest tests/test_sdk_typescript.py)");
  }
  return Object.fromEntries(names.map((name) => [name, process.env[name]]));
}

export const FAST = { backoffMs: 10, maxBackoffMs: 50 }; // retries that do not make the tests wait
export const quiet = { warn() {}, info() {} };

/** Tell the Python side which events this test expects stored once each, and which never. */
export function report(test, stored, refused = []) {
  const { FLYWHEEL_REPORT } = env("FLYWHEEL_REPORT");
  appendFileSync(FLYWHEEL_REPORT, JSON.stringify({ test, stored, refused }) + "\n");
}

export function generic(count, start = 0) {
  return Array.from({ length: count }, (_, i) => ({
    type: "core.generic", event_id: randomUUID(), attributes: { i: start + i },
  }));
}

export async function eventually(check, { timeoutMs = 20_000, what = "the condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** event_id -> how many times it is stored for the key's tenant (every page of GET /v1/events). */
export async function storedCounts(url, key) {
  const counts = new Map();
  let cursor;
  do {
    const query = new URLSearchParams({ limit: "1000", ...(cursor ? { cursor } : {}) });
    const response = await fetch(`${url}/v1/events?${query}`, { headers: { Authorization: `Bearer ${key}` } });
    if (response.status !== 200) throw new Error(`GET /v1/events: ${response.status} ${await response.text()}`);
    const page = await response.json();
    for (const item of page.items) counts.set(item.event_id, (counts.get(item.event_id) ?? 0) + 1);
    cursor = page.next_cursor;
  } while (cursor);
  return counts;
}

export async function storedEvents(url, key) {
  const response = await fetch(`${url}/v1/events?limit=1000`, { headers: { Authorization: `Bearer ${key}` } });
  return new Map((await response.json()).items.map((item) => [item.event_id, item]));
}

/** How many of `ids` are stored, and whether any is stored twice. */
export async function storedOnce(url, key, ids) {
  const counts = await storedCounts(url, key);
  return { found: ids.filter((id) => counts.has(id)).length, twice: ids.filter((id) => counts.get(id) > 1) };
}

/**
 * A real HTTP server in front of Flywheel that does to each `POST /v1/events` what the test
 * says: `actions` are used one per request, then `fallback`: "forward"; "drop" (forward,
 * then close the connection without an answer: stored, but the client never hears of
 * it); "reset" (close it without forwarding: the server is down); or
 * { status, headers } to answer that instead (a header value may be a function).
 * `maxEvents`: larger batches get 413. `seen` records every request.
 */
export class Proxy {
  constructor(target) {
    this.target = target;
    this.actions = [];
    this.fallback = "forward";
    this.maxEvents = undefined;
    this.seen = [];
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  next(count) {
    if (this.actions.length) return this.actions.shift();
    if (this.maxEvents !== undefined && count > this.maxEvents) return { status: 413, headers: {} };
    return this.fallback;
  }

  async handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const count = JSON.parse(body.toString("utf8")).length;
    const action = this.next(count);
    const seen = { at: Date.now(), key: req.headers["idempotency-key"], count,
                   action: typeof action === "string" ? action : "status" };
    this.seen.push(seen);
    if (action === "reset") {
      req.socket.destroy();
      return;
    }
    if (typeof action === "object") {
      const headers = Object.fromEntries(Object.entries(action.headers).map(([k, v]) => [k, typeof v === "function" ? v() : v]));
      seen.status = action.status;
      res.writeHead(action.status, { "Content-Type": "application/json", ...headers });
      res.end(JSON.stringify({ status: action.status, code: "test", message: "no" }));
      return;
    }
    const forwarded = await fetch(this.target + req.url, {
      method: "POST", body,
      headers: Object.fromEntries(["authorization", "content-type", "idempotency-key"]
        .filter((name) => req.headers[name]).map((name) => [name, req.headers[name]])),
    });
    seen.status = forwarded.status;
    seen.replayed = forwarded.headers.get("idempotent-replayed");
    const answer = Buffer.from(await forwarded.arrayBuffer());
    if (action === "drop") {
      req.socket.destroy();
      return;
    }
    res.writeHead(forwarded.status, { "Content-Type": forwarded.headers.get("content-type") ?? "application/json" });
    res.end(answer);
  }
}
