// Sending against a real Flywheel: events of any type, rlaas helpers, batching by size and
// by time, a lost answer, rejections, a batch too large. Run by tests/test_sdk_typescript.py.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client } from "../dist/index.js";
import { FAST, Proxy, env, eventually, generic, quiet, report, storedCounts, storedEvents, storedOnce }
  from "./helpers.mjs";

const { FLYWHEEL_URL: url, FLYWHEEL_KEY: key } = env("FLYWHEEL_URL", "FLYWHEEL_KEY");
let proxy;

before(async () => {
  proxy = await new Proxy(url).start();
});
after(() => proxy.stop());

function fresh() {
  proxy.actions = [];
  proxy.fallback = "forward";
  proxy.maxEvents = undefined;
  proxy.seen = [];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("events of any type, feedback and task results are stored as sent", async () => {
  const fw = new Client({ url, apiKey: key });
  const interaction = crypto.randomUUID();
  const other = crypto.randomUUID();
  const ids = [
    fw.track("core.generic", { subject_id: "s-1", attributes: { n: 1 } }),
    fw.send({ type: "core.generic", event_id: crypto.randomUUID(), ts: new Date(), session_id: "x-9" }),
    fw.feedback(interaction, { thumbs: "up", subject_id: "u-1" }),
    fw.feedback(interaction, { rating: 4, comment: "fine" }),
    fw.feedback(interaction, { corrected_text: "The fixed answer." }),
    fw.feedback(interaction, { compare_with: other, preferred: "other" }),
    fw.taskResult(interaction, "ticket.resolve", "success", { score: 0.75, details: { turns: 3 } }),
  ];
  assert.equal(await fw.flush(10_000), true);
  assert.deepEqual(fw.stats, { sent: 7, duplicate: 0, buffered: 0, dropped: 0, retried: 0, rejected: 0 });
  await fw.close();
  report("any type", ids);

  const events = await storedEvents(url, key);
  assert.deepEqual(ids.filter((id) => events.has(id)), ids);
  assert.equal(events.get(ids[0]).subject_id, "s-1");
  assert.equal(events.get(ids[1]).session_id, "x-9");
  const signals = ids.slice(2, 6).map((id) => events.get(id).event.signal);
  assert.deepEqual(signals.map((s) => s.kind), ["thumbs", "rating", "edit", "comparison"]);
  assert.equal(signals[1].value, 4);
  assert.equal(events.get(ids[3]).event.comment, "fine");
  assert.deepEqual(signals[3], { kind: "comparison", other_interaction_id: other, preferred: "other" });
  const result = events.get(ids[6]).event;
  assert.deepEqual([result.type, result.interaction_id, result.task, result.outcome, result.score, result.details],
    ["rlaas.task_result", interaction, "ticket.resolve", "success", 0.75, { turns: 3 }]);
});

test("a batch goes out when batchSize events wait, before the interval; close sends the rest", async () => {
  fresh();
  const fw = new Client({ url: proxy.url, apiKey: key, batchSize: 3, flushIntervalMs: 60_000 });
  const events = generic(7);
  for (const event of events) fw.send(event);
  await eventually(() => proxy.seen.length >= 2, { what: "two batches" });
  await sleep(300); // the seventh waits for a full batch, the interval, or close
  assert.deepEqual(proxy.seen.map((s) => s.count), [3, 3]);
  await fw.close();
  assert.deepEqual(proxy.seen.map((s) => s.count), [3, 3, 1]);
  report("batch size", events.map((e) => e.event_id));
});

test("a batch goes out when its oldest event waited flushIntervalMs", async () => {
  fresh();
  const fw = new Client({ url: proxy.url, apiKey: key, batchSize: 100, flushIntervalMs: 500 });
  const started = Date.now();
  const ids = [fw.send(generic(1)[0]), fw.send(generic(1)[0])];
  await eventually(() => proxy.seen.length, { what: "a batch" });
  const waited = proxy.seen[0].at - started;
  assert.ok(waited >= 490 && waited < 3000, `sent after ${waited} ms`);
  assert.equal(proxy.seen[0].count, 2);
  await fw.close();
  report("batch time", ids);
});

test("a lost answer is retried under the same key, and the server does not store it twice", async () => {
  fresh();
  proxy.actions.push("drop"); // stored upstream; the answer never reaches the client
  const fw = new Client({ url: proxy.url, apiKey: key, logger: quiet, ...FAST });
  const ids = generic(5).map((event) => fw.send(event));
  assert.equal(await fw.flush(15_000), true);
  const [first, second] = proxy.seen;
  assert.equal(first.status, 200);
  assert.equal(first.key, second.key);
  assert.match(first.key, /^[0-9a-f]{32}$/);
  assert.equal(second.replayed, "true"); // the server answered from its idempotency record
  assert.deepEqual([fw.stats.sent, fw.stats.duplicate, fw.stats.retried], [5, 0, 1]);
  await fw.close();
  const { found, twice } = await storedOnce(url, key, ids);
  assert.deepEqual([found, twice], [5, []]);
  report("lost answer", ids);
});

test("a client error rejects the batch at once, never retried", async () => {
  const rejected = [];
  const fw = new Client({ url, apiKey: "fw_not_a_real_key", onRejected: (r) => rejected.push(...r), ...FAST });
  const ids = generic(2).map((event) => fw.send(event));
  assert.equal(await fw.flush(10_000), true); // nothing left to send: it was refused
  await fw.close();
  assert.deepEqual(rejected.map((r) => r.eventId), ids);
  assert.deepEqual([...new Set(rejected.map((r) => r.status))], [401]);
  assert.deepEqual([fw.stats.rejected, fw.stats.retried, fw.stats.sent], [2, 0, 0]);
});

test("events the server refuses one by one go to onRejected; the rest are stored", async () => {
  const rejected = [];
  const fw = new Client({ url, apiKey: key, onRejected: (r) => rejected.push(...r) });
  const [good1, good2] = generic(2);
  const bad = { type: "nope.unknown", event_id: crypto.randomUUID() };
  for (const event of [good1, bad, good2]) fw.send(event);
  assert.equal(await fw.flush(10_000), true);
  await fw.close();
  assert.deepEqual([fw.stats.sent, fw.stats.rejected], [2, 1]);
  assert.equal(rejected.length, 1);
  assert.deepEqual([rejected[0].eventId, rejected[0].code, rejected[0].status, rejected[0].event.type],
    [bad.event_id, "unknown_type", 200, "nope.unknown"]);
  const counts = await storedCounts(url, key);
  assert.ok(counts.has(good1.event_id) && counts.has(good2.event_id) && !counts.has(bad.event_id));
  report("one by one", [good1.event_id, good2.event_id], [bad.event_id]);
});

test("a batch too large for the server (413) is split, each half under a new key", async () => {
  fresh();
  proxy.maxEvents = 3;
  const fw = new Client({ url: proxy.url, apiKey: key, batchSize: 8, ...FAST });
  const ids = generic(8).map((event) => fw.send(event));
  assert.equal(await fw.flush(15_000), true);
  await fw.close();
  assert.deepEqual(proxy.seen.map((s) => s.count), [8, 4, 2, 2, 4, 2, 2]);
  assert.equal(new Set(proxy.seen.map((s) => s.key)).size, 7); // never stored: the halves get new keys
  assert.deepEqual([fw.stats.sent, fw.stats.rejected], [8, 0]);
  const { found, twice } = await storedOnce(url, key, ids);
  assert.deepEqual([found, twice], [8, []]);
  report("split", ids);
});
