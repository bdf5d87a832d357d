// Retries against a real HTTP server in front of Flywheel that answers 429/503 with
// Retry-After (seconds and HTTP dates), or 500 every time. Run by tests/test_sdk_typescript.py.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client } from "../dist/index.js";
import { FAST, Proxy, env, generic, quiet, report, storedOnce } from "./helpers.mjs";

const { FLYWHEEL_URL: url, FLYWHEEL_KEY: key } = env("FLYWHEEL_URL", "FLYWHEEL_KEY");
let proxy;

before(async () => {
  proxy = await new Proxy(url).start();
});
after(() => proxy.stop());

function fresh() {
  proxy.actions = [];
  proxy.fallback = "forward";
  proxy.seen = [];
}

const inTwoSeconds = () => new Date(Date.now() + 2000).toUTCString(); // "Wed, 04 Mar 2026 05:06:17 GMT"

const cases = [
  ["429 with Retry-After: 1", 429, () => "1", 990],
  ["503 with Retry-After: 1", 503, () => "1", 990],
  // An HTTP date has whole seconds: between 1 and 2 s from when it is sent.
  ["429 with Retry-After as an HTTP date", 429, inTwoSeconds, 950],
];

for (const [name, status, retryAfter, least] of cases) {
  test(`the retry waits for the server's ${name}`, async () => {
    fresh();
    proxy.actions.push({ status, headers: { "Retry-After": retryAfter } });
    // Without Retry-After the retry would come within 10 ms (FAST).
    const fw = new Client({ url: proxy.url, apiKey: key, ...FAST });
    const id = fw.send(generic(1)[0]);
    assert.equal(await fw.flush(15_000), true);
    const [first, second] = proxy.seen;
    assert.deepEqual([first.status, second.status], [status, 200]);
    const waited = second.at - first.at;
    assert.ok(waited >= least && waited < 3000, `retried after ${waited} ms`);
    assert.ok(first.key && first.key === second.key, "one batch, one Idempotency-Key");
    assert.deepEqual([fw.stats.retried, fw.stats.sent], [1, 1]);
    await fw.close();
    const { found, twice } = await storedOnce(url, key, [id]);
    assert.deepEqual([found, twice], [1, []]);
    report(name, [id]);
  });
}

test("a Retry-After longer than a minute is not slept through: the batch waits in the buffer", async () => {
  fresh();
  proxy.actions.push({ status: 429, headers: { "Retry-After": "120" } });
  const fw = new Client({ url: proxy.url, apiKey: key, logger: quiet, ...FAST });
  const id = fw.send(generic(1)[0]);
  const started = Date.now();
  assert.equal(await fw.flush(10_000), false); // unavailable for now
  assert.ok(Date.now() - started < 2000);
  assert.equal(fw.stats.buffered, 1);
  assert.equal(proxy.seen.length, 1);
  assert.equal(await fw.flush(10_000), true); // flush() tries now, whatever the server said
  assert.equal(proxy.seen[1].key, proxy.seen[0].key);
  await fw.close();
  report("long retry-after", [id]);
});

test("retries back off exponentially, and a 500 every time rejects the batch instead of holding the rest", async () => {
  fresh();
  proxy.actions.push(...Array.from({ length: 4 }, () => ({ status: 500, headers: {} })));
  const rejected = [];
  const fw = new Client({ url: proxy.url, apiKey: key, maxRetries: 3, backoffMs: 100, maxBackoffMs: 1000,
                          onRejected: (r) => rejected.push(...r) });
  const doomed = fw.send(generic(1)[0]);
  assert.equal(await fw.flush(15_000), true);
  const gaps = proxy.seen.slice(1).map((s, i) => s.at - proxy.seen[i].at);
  assert.equal(gaps.length, 3);
  gaps.forEach((gap, retry) => assert.ok(gap <= 100 * 2 ** retry + 60, `retry ${retry} after ${gap} ms`));
  assert.deepEqual(rejected.map((r) => [r.eventId, r.status]), [[doomed, 500]]);
  const next = fw.send(generic(1)[0]); // the next batch is not held up
  assert.equal(await fw.flush(10_000), true);
  await fw.close();
  assert.deepEqual([fw.stats.sent, fw.stats.rejected, fw.stats.retried], [1, 1, 3]);
  report("500 rejects", [next], [doomed]);
});
