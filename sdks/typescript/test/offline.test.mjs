// The offline buffer against a Flywheel that really stops (nothing listens on its port) and
// starts again, driven through FLYWHEEL_CONTROL; processes that exit with events buffered
// and new ones that send them. Run by tests/test_sdk_typescript.py, which then counts each
// reported event id in the database: stored once, none lost.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { Client, FileBuffer } from "../dist/node.js";
import { FAST, Proxy, env, eventually, generic, quiet, report, storedOnce } from "./helpers.mjs";

const { FLYWHEEL_URL: url, FLYWHEEL_KEY: key, FLYWHEEL_CONTROL: control } =
  env("FLYWHEEL_URL", "FLYWHEEL_KEY", "FLYWHEEL_CONTROL");
const child = fileURLToPath(new URL("./fixtures/send-and-exit.mjs", import.meta.url));

async function server(action) {
  const response = await fetch(`${control}/${action}`, { method: "POST" });
  assert.equal(response.status, 204, `${action} the server`);
}

afterEach(() => server("start")); // whatever happened, the next test finds the server up

const root = mkdtempSync(join(tmpdir(), "flywheel-sdk-offline-"));
after(() => rmSync(root, { recursive: true, force: true }));
const folderOf = () => mkdtempSync(join(root, "buffer-"));
const batchFiles = (folder) => readdirSync(folder).filter((name) => name.endsWith(".json")).sort();
const eventsIn = (folder) => batchFiles(folder).reduce((sum, name) => sum + Number(name.split("-")[1]), 0);

/** Run the child to its end (asynchronously: this process's proxy must keep answering it). */
async function sendAndExit(target, folder, events, how = "end") {
  const file = `${folder}.events.json`;
  writeFileSync(file, JSON.stringify(events));
  await promisify(execFile)(process.execPath, [child, target, key, folder, file, how], { timeout: 60_000 });
}

test("what waits is sent when a script ends: the client closes itself as the event loop empties", async () => {
  const folder = folderOf();
  const events = generic(10);
  const started = Date.now();
  await sendAndExit(url, folder, events); // batches of 7, flushIntervalMs a minute: 3 events only wait
  assert.ok(Date.now() - started < 10_000, "it did not wait for the interval");
  assert.deepEqual(batchFiles(folder), []);
  const ids = events.map((e) => e.event_id);
  const { found, twice } = await storedOnce(url, key, ids);
  assert.deepEqual([found, twice], [10, []]);
  report("sent at exit", ids);
});

test("an outage: events wait in the buffer folder while the server is stopped, and go once it is back", async () => {
  const folder = folderOf();
  await server("stop");
  const fw = new Client({ url, apiKey: key, buffer: new FileBuffer(folder), batchSize: 7, flushIntervalMs: 50,
                          maxRetries: 1, logger: quiet, ...FAST });
  const ids = generic(25).map((event) => fw.send(event));
  await eventually(() => eventsIn(folder) === 25, { what: "25 events in the buffer folder" });
  assert.deepEqual(batchFiles(folder).map((name) => Number(name.split("-")[1])), [7, 7, 7, 4]);
  assert.equal(await fw.flush(2000), false); // still down
  assert.equal(fw.stats.buffered, 25);

  await server("start");
  assert.equal(await fw.flush(15_000), true);
  assert.deepEqual([fw.stats.sent, fw.stats.duplicate, fw.stats.buffered, fw.stats.dropped], [25, 0, 0, 0]);
  assert.deepEqual(batchFiles(folder), []); // they left the buffer once acknowledged
  await fw.close();
  const { found, twice } = await storedOnce(url, key, ids);
  assert.deepEqual([found, twice], [25, []]);
  report("outage", ids);
});

test("a restart: a process ends with events buffered, the next one sends them", async () => {
  const folder = folderOf();
  await server("stop");
  const events = generic(25);
  await sendAndExit(url, folder, events);
  assert.equal(eventsIn(folder), 25);
  assert.deepEqual(readdirSync(folder).filter((name) => name.startsWith(".")), []); // no lock, no partial file

  await server("start");
  const fw = new Client({ url, apiKey: key, buffer: new FileBuffer(folder) });
  await fw.ready;
  assert.equal(fw.stats.buffered, 25);
  assert.equal(await fw.flush(15_000), true);
  assert.deepEqual([fw.stats.sent, fw.stats.duplicate, fw.stats.buffered], [25, 0, 0]);
  await fw.close();
  assert.deepEqual(batchFiles(folder), []);
  const ids = events.map((e) => e.event_id);
  const { found, twice } = await storedOnce(url, key, ids);
  assert.deepEqual([found, twice], [25, []]);
  report("restart", ids);
});

test("process.exit() with events only in memory: the exit hook writes them to the folder", async () => {
  const folder = folderOf();
  await server("stop");
  const events = generic(10);
  await sendAndExit(url, folder, events, "exit-now");
  assert.deepEqual(batchFiles(folder).map((name) => Number(name.split("-")[1])), [7, 3]);

  await server("start");
  const fw = new Client({ url, apiKey: key, buffer: new FileBuffer(folder) });
  assert.equal(await fw.flush(15_000), true);
  assert.equal(fw.stats.sent, 10);
  await fw.close();
  const ids = events.map((e) => e.event_id);
  const { found, twice } = await storedOnce(url, key, ids);
  assert.deepEqual([found, twice], [10, []]);
  report("exit now", ids);
});

test("a batch the server stored before a restart goes again under its key and is not stored twice", async () => {
  const proxy = await new Proxy(url).start();
  try {
    proxy.fallback = "drop"; // every batch reaches the server; no answer reaches the client
    const folder = folderOf();
    const events = generic(5);
    await sendAndExit(proxy.url, folder, events);
    const [file] = batchFiles(folder);
    assert.ok(proxy.seen.length >= 1 && proxy.seen.every((s) => s.status === 200), JSON.stringify(proxy.seen));
    const key0 = proxy.seen[0].key;
    assert.ok(file.includes(key0), `${file} holds the batch sent as ${key0}`);

    proxy.fallback = "forward";
    const fw = new Client({ url: proxy.url, apiKey: key, buffer: new FileBuffer(folder) });
    assert.equal(await fw.flush(15_000), true);
    await fw.close();
    const last = proxy.seen.at(-1);
    assert.deepEqual([last.key, last.replayed], [key0, "true"]); // the server answered from its record
    assert.deepEqual([fw.stats.sent, fw.stats.duplicate], [5, 0]);
    const ids = events.map((e) => e.event_id);
    const { found, twice } = await storedOnce(url, key, ids);
    assert.deepEqual([found, twice], [5, []]);
    report("same key", ids);
  } finally {
    await proxy.stop();
  }
});
