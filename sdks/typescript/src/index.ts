// @flywheel/sdk: send events to Flywheel from browsers, browser extensions and Node.
//
//   import { Client, browserBuffer } from "@flywheel/sdk";
//   const fw = new Client({ url, apiKey, buffer: browserBuffer("my-app") });
//   fw.track("core.generic", { attributes: { clicked: "buy" } });
//   fw.feedback(interactionId, { thumbs: "up" });
//
// Node's file buffer is in "@flywheel/sdk/node" (this entry point imports nothing from Node).

export { BufferFull, Client, ClientClosed } from "./client.js";
export type { ClientOptions, Logger } from "./options.js";
export type { OnFull, Rejection, Stats } from "./pipeline.js";
export {
  feedbackEvent, taskResultEvent, prepareEvent,
  type Envelope, type EventFields, type EventInput, type FeedbackOptions, type FeedbackSignal, type Stamp,
  type TaskOutcome, type TaskResultOptions,
} from "./events.js";
export { RetryPolicy, parseRetryAfter } from "./retry.js";
export { type BatchStore, MemoryStore, type StoredBatch } from "./store.js";
export { BrowserBuffer, IndexedDBStore, LocalStorageStore, browserBuffer } from "./browser-store.js";
export type * from "./generated/index.js";
export const VERSION = "0.1.0";
