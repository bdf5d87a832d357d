// The parts that need no server: Retry-After, backoff, events and their checks, the
// file buffer on its own, and the browser entry point importing nothing from Node.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  BufferFull, Client, ClientClosed, RetryPolicy, feedbackEvent, parseRetryAfter, prepareEvent, taskResultEvent,
} from "../dist/index.js";
import { BufferLocked, FileBuffer } from "../dist/node.js";
import { splitArray } from "../dist/pipeline.js";
import { FAST, generic, quiet } from "./helpers.mjs";

const interaction = "6f1c2b8e-8a57-4c43-9a35-0d1f0b7f6c11";
const deadUrl = "http://127.0.0.1:9"; // the discard port: nothing answers
const root = mkdtempSync(join(tmpdir(), "flywheel-sdk-unit-"));
after(() => rmSync(root, { recursive: true, force: true }));
const temp = () => mkdtempSync(join(root, "buffer-"));

test("Retry-After: delta-seconds and the three HTTP date formats", () => {
  const now = Date.UTC(2026, 2, 4, 5, 6, 7);
  assert.equal(parseRetryAfter("5"), 5000);
  assert.equal(parseRetryAfter(" 0.5 "), 500);
  assert.equal(parseRetryAfter("Wed, 04 Mar 2026 05:06:17 GMT", now), 10_000);
  assert.equal(parseRetryAfter("Wednesday, 04-Mar-26 05:06:17 GMT", now), 10_000);
  assert.equal(parseRetryAfter("Wed Mar  4 05:06:17 2026", now), 10_000); // asctime: GMT, not local time
  assert.equal(parseRetryAfter("Wed, 04 Mar 2026 05:06:00 GMT", now), 0); // past: no wait
  assert.equal(parseRetryAfter("-3"), 0);
  assert.equal(parseRetryAfter("99999999"), 86_400_000); // capped at a day
  for (const unreadable of ["soon", "nan", "", null, undefined, "2026-03-04", "1e3"]) {
    assert.equal(parseRetryAfter(unreadable, now), undefined, String(unreadable));
  }
});

test("backoff is exponential with full jitter, Retry-After a floor, probes half fixed", () => {
  const policy = new RetryPolicy(5, 500, 4000);
  [500, 1000, 2000, 4000, 4000, 4000].forEach((ceiling, retry) => {
    const waits = Array.from({ length: 300 }, () => policy.delay(retry));
    assert.ok(Math.min(...waits) >= 0 && Math.max(...waits) <= ceiling, `retry ${retry}`);
    assert.ok(Math.max(...waits) > ceiling * 0.7 && Math.min(...waits) < ceiling * 0.3, "spread over the range");
  });
  assert.ok(Array.from({ length: 50 }, () => policy.delay(0, 3000)).every((w) => w >= 3000));
  assert.ok(Array.from({ length: 50 }, () => policy.probeDelay(3)).every((w) => w >= 2000 && w <= 4000));
});

test("an event gets a uuid4 event_id and a UTC ts, once, and is encoded at once", () => {
  const event = { type: "core.generic", attributes: { n: 1 } };
  const first = prepareEvent(event);
  const body = JSON.parse(first.json);
  assert.match(body.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(body.event_id, first.eventId);
  assert.ok(Math.abs(Date.parse(body.ts) - Date.now()) < 5000 && body.ts.endsWith("Z"));
  assert.equal(event.event_id, undefined, "the caller's object is not changed");
  event.attributes.n = 2;
  assert.equal(JSON.parse(first.json).attributes.n, 1, "later changes do not reach the batch");
  const given = prepareEvent({ type: "x.y", event_id: interaction, ts: new Date(Date.UTC(2026, 0, 2)) });
  assert.deepEqual(JSON.parse(given.json), { type: "x.y", event_id: interaction, ts: "2026-01-02T00:00:00.000Z" });
  assert.throws(() => prepareEvent({ attributes: {} }), /needs a "type"/);
  assert.throws(() => prepareEvent({ type: "x.y", ts: 5 }), /ts is a Date/);
});

test("feedback and task results are checked before they are queued", () => {
  assert.deepEqual(feedbackEvent(interaction, { thumbs: "up", subject_id: "u-1" }), {
    type: "rlaas.feedback", interaction_id: interaction, signal: { kind: "thumbs", value: "up" }, subject_id: "u-1",
  });
  assert.deepEqual(feedbackEvent(interaction, { compare_with: interaction, preferred: "tie" }).signal,
    { kind: "comparison", other_interaction_id: interaction, preferred: "tie" });
  const cases = [
    [{}, /exactly one/],
    [{ thumbs: "up", rating: 3 }, /exactly one/],
    [{ thumbs: "sideways" }, /"up" or "down"/],
    [{ rating: 6 }, /1 to 5/],
    [{ rating: 2.5 }, /1 to 5/],
    [{ compare_with: interaction }, /preferred "this"/],
    [{ rating: 3, preferred: "this" }, /goes with compare_with/],
    [{ thumbs: "up", subjectid: "x" }, /unexpected option\(s\) subjectid/],
  ];
  for (const [options, message] of cases) assert.throws(() => feedbackEvent(interaction, options), message);
  assert.throws(() => feedbackEvent("chatcmpl-123", { thumbs: "up" }), /interactionId is a UUID/);
  assert.throws(() => taskResultEvent(interaction, "t", "won"), /outcome is one of/);
  assert.throws(() => taskResultEvent(interaction, "t", "success", { score: "high" }), /score is a number/);
  assert.deepEqual(taskResultEvent(interaction, "ticket.resolve", "partial", { score: 0.5, details: { turns: 2 } }), {
    type: "rlaas.task_result", interaction_id: interaction, task: "ticket.resolve", outcome: "partial", score: 0.5,
    details: { turns: 2 },
  });
});

test("a batch is split into its elements' exact text (no re-encoding)", () => {
  const body = '[{"a":"x,]}\\"[{","n":12345678901234567890},{"b":[1,{"c":2}]} ,{"d":"\\\\"}]';
  assert.deepEqual(splitArray(body), ['{"a":"x,]}\\"[{","n":12345678901234567890}', '{"b":[1,{"c":2}]}', '{"d":"\\\\"}']);
  assert.deepEqual(splitArray("[]"), []);
});

test("settings are checked at once, with every problem named", () => {
  assert.throws(() => new Client({ url: "ftp://x", apiKey: "" }), /url is an http\(s\) URL; apiKey is the key's secret/);
  assert.throws(() => new Client({ url: deadUrl, apiKey: "k", batchSize: 10_001 }), /batchSize is 1 to 10000/);
  assert.throws(() => new Client({ url: deadUrl, apiKey: "k", onFull: "block" }), /onFull is "drop_oldest" or "raise"/);
});

test("a full buffer drops the oldest batch, or refuses with BufferFull", async () => {
  const dropping = new Client({ url: deadUrl, apiKey: "k", batchSize: 5, maxBufferEvents: 10, maxRetries: 0,
                                logger: quiet, ...FAST });
  for (const event of generic(30)) dropping.send(event);
  const { buffered, dropped } = dropping.stats;
  assert.ok(buffered <= 10 && dropped >= 20 && buffered + dropped === 30, JSON.stringify(dropping.stats));
  await dropping.close(200);
  assert.equal(dropping.stats.dropped, 30, "no buffer: what was never acknowledged is counted lost at close");

  const raising = new Client({ url: deadUrl, apiKey: "k", batchSize: 5, maxBufferEvents: 10, onFull: "raise",
                               maxRetries: 0, logger: quiet, ...FAST });
  for (const event of generic(10)) raising.send(event);
  assert.throws(() => raising.send(generic(1)[0]), BufferFull);
  assert.equal(raising.stats.buffered, 10);
  await raising.close(200);
  assert.throws(() => raising.send(generic(1)[0]), ClientClosed);
});

test("the file buffer: atomic files named seq-count-key, oldest first, one client per folder", async () => {
  const folder = temp();
  const store = new FileBuffer(folder);
  assert.throws(() => new FileBuffer(folder), BufferLocked); // the same process counts too
  await store.add({ seq: "0000000000000002", key: "b".repeat(32), count: 1, body: '[{"n":2}]' });
  store.addSync({ seq: "0000000000000001", key: "a".repeat(32), count: 2, body: '[{"n":1},{"n":"é"}]' });
  assert.deepEqual(readdirSync(folder).sort(), [".lock", `0000000000000001-2-${"a".repeat(32)}.json`,
                                                `0000000000000002-1-${"b".repeat(32)}.json`]);
  assert.deepEqual((await store.load()).map((b) => [b.seq, b.count, b.body]),
    [["0000000000000001", 2, '[{"n":1},{"n":"é"}]'], ["0000000000000002", 1, '[{"n":2}]']]);
  await store.close();
  assert.ok(!existsSync(join(folder, ".lock")));
  const again = new FileBuffer(folder); // free once closed
  assert.equal((await again.load()).length, 2);
  await again.close();
});

test("a lock left by a process that is gone is taken over; a crash's partial write is discarded", async () => {
  const folder = temp();
  writeFileSync(join(folder, ".lock"), JSON.stringify({ pid: 2 ** 22 + 7, host: (await import("node:os")).hostname(),
                                                        token: "old" }));
  writeFileSync(join(folder, ".tmp-0000000000000001-" + "c".repeat(32)), "[{");
  const store = new FileBuffer(folder);
  assert.deepEqual(readdirSync(folder), [".lock"]);
  assert.notEqual(JSON.parse(readFileSync(join(folder, ".lock"), "utf8")).token, "old");
  await store.close();
});

test("the browser entry point imports nothing from Node", () => {
  const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(join(dist, file), "utf8").replace(/^\s*\/\/.*$/gm, ""); // not the comments
    for (const [, spec] of code.matchAll(/(?:import|export)[^"']*?from\s*["']([^"']+)["']/g)) {
      assert.ok(spec.startsWith("./"), `${file} imports ${spec}`);
      visit(spec.slice(2));
    }
  };
  visit("index.js");
  assert.ok(seen.has("client.js") && seen.has("browser-store.js") && !seen.has("file-store.js"), [...seen].join());
});
