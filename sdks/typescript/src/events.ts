// Events as `POST /v1/events` takes them, and the rlaas helpers that build them.
//
// An event is a JSON object with a `type` (any registered event type: the core's, a
// plugin's), a client-made `event_id` and a timezone-aware `ts`. The SDK fills in the
// last two when they are missing, once, when the event is queued: the id and the time
// then travel with the event through every retry and restart, and the server, which
// deduplicates on (tenant, event_id) within the event's day, stores it once.
//
// Field names are the wire's (snake_case) everywhere an event is described; only the
// client's own settings are camelCase. The types come from the server's JSON Schemas
// (src/generated/); the checks below give an early, readable error for the mistakes a
// caller makes most, and the server checks every field again.

import type { Comparison, GenericEvent, KnownEvents, Thumbs } from "./generated/index.js";
import { uuid4 } from "./uuid.js";

/** `event_id` and `ts` may be left out: the SDK fills them in. `ts` may be a Date. */
export interface Stamp {
  event_id?: string;
  ts?: string | Date;
}

/** The fields of an event of type `T` other than `type`: checked for the types the server's schemas name. */
export type EventFields<T extends string> = T extends keyof KnownEvents
  ? Omit<KnownEvents[T], "type" | "event_id" | "ts"> & Stamp
  : Stamp & { [field: string]: unknown };

/** An event to send: `{ type, ...fields }`. */
export type EventInput<T extends string = string> = { type: T } & EventFields<T>;

/** The envelope every event shares, as the helpers take it. */
export type Envelope = Stamp & Pick<GenericEvent, "subject_id" | "session_id" | "attributes">;

type Without<K extends string> = { [P in K]?: never };
type SignalName = "thumbs" | "rating" | "corrected_text" | "compare_with";

/** Exactly one signal: thumbs, a rating, a correction, or a comparison with another interaction. */
export type FeedbackSignal =
  | ({ thumbs: Thumbs["value"] } & Without<Exclude<SignalName, "thumbs"> | "preferred">)
  | ({ rating: 1 | 2 | 3 | 4 | 5 } & Without<Exclude<SignalName, "rating"> | "preferred">)
  | ({ corrected_text: string } & Without<Exclude<SignalName, "corrected_text"> | "preferred">)
  | ({ compare_with: string; preferred: Comparison["preferred"] } & Without<Exclude<SignalName, "compare_with">>);

export type FeedbackOptions = FeedbackSignal & Envelope & { comment?: string };
export type TaskOutcome = KnownEvents["rlaas.task_result"]["outcome"];
export type TaskResultOptions = Envelope & { score?: number; details?: Record<string, unknown> };

export const ENVELOPE = ["event_id", "ts", "subject_id", "session_id", "attributes"] as const;
const THUMBS = ["up", "down"];
const PREFERRED = ["this", "other", "tie"];
const OUTCOMES = ["success", "failure", "partial", "abandoned"];
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** An event encoded for a batch, with its id. */
export interface Prepared {
  json: string;
  eventId: string;
}

/** The event's JSON and its event_id, with `event_id` (a uuid4) and `ts` (now, UTC) filled in if missing. */
export function prepareEvent(event: object): Prepared {
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    throw new TypeError(`an event is an object with a "type", not ${describe(event)}`);
  }
  const body: Record<string, unknown> = { ...event };
  if (typeof body.type !== "string" || !body.type) {
    throw new TypeError("an event needs a \"type\", the name of a registered event type (e.g. \"rlaas.feedback\")");
  }
  if (body.event_id === undefined || body.event_id === null) body.event_id = uuid4();
  else if (typeof body.event_id !== "string") throw new TypeError("event_id is a UUID string");
  if (body.ts === undefined || body.ts === null) body.ts = new Date().toISOString();
  else if (body.ts instanceof Date) body.ts = isoTime(body.ts);
  else if (typeof body.ts !== "string") throw new TypeError("ts is a Date or an ISO 8601 string with a timezone");
  return { json: JSON.stringify(body), eventId: body.event_id as string };
}

/** An `rlaas.feedback` event: exactly one of thumbs, rating, corrected_text or compare_with (+ preferred). */
export function feedbackEvent(interactionId: string, options: FeedbackOptions): EventInput<"rlaas.feedback"> {
  const { comment, ...rest } = (options ?? {}) as unknown as Record<string, unknown>;
  const given = ["thumbs", "rating", "corrected_text", "compare_with"].filter((name) => rest[name] !== undefined);
  if (given.length !== 1) {
    throw new RangeError("feedback takes exactly one of thumbs, rating, corrected_text or compare_with, got " +
      (given.join(", ") || "none"));
  }
  const event: Record<string, unknown> = {
    type: "rlaas.feedback",
    interaction_id: checkUuid(interactionId, "interactionId"),
    signal: signalOf(rest),
  };
  if (comment !== undefined) event.comment = comment;
  const taken = ["thumbs", "rating", "corrected_text", "compare_with", "preferred"];
  return withEnvelope(event, rest, taken) as unknown as EventInput<"rlaas.feedback">;
}

function signalOf(options: Record<string, unknown>): KnownEvents["rlaas.feedback"]["signal"] {
  const { thumbs, rating, corrected_text: corrected, compare_with: other, preferred } = options;
  if (preferred !== undefined && other === undefined) throw new RangeError("preferred goes with compare_with");
  if (thumbs !== undefined) {
    if (!THUMBS.includes(thumbs as string)) throw new RangeError(`thumbs is "up" or "down", not ${describe(thumbs)}`);
    return { kind: "thumbs", value: thumbs as Thumbs["value"] };
  }
  if (rating !== undefined) {
    if (!Number.isInteger(rating) || (rating as number) < 1 || (rating as number) > 5) {
      throw new RangeError(`rating is an integer from 1 to 5, not ${describe(rating)}`);
    }
    return { kind: "rating", value: rating as number };
  }
  if (corrected !== undefined) {
    if (typeof corrected !== "string") throw new TypeError("corrected_text is the answer as the user corrected it");
    return { kind: "edit", corrected_text: corrected };
  }
  if (!PREFERRED.includes(preferred as string)) {
    throw new RangeError(`compare_with needs preferred "this", "other" or "tie", not ${describe(preferred)}`);
  }
  return {
    kind: "comparison",
    other_interaction_id: checkUuid(other, "compare_with"),
    preferred: preferred as Comparison["preferred"],
  };
}

/** An `rlaas.task_result` event: how the task an interaction served ended. */
export function taskResultEvent(interactionId: string, task: string, outcome: TaskOutcome,
                                options: TaskResultOptions = {}): EventInput<"rlaas.task_result"> {
  if (typeof task !== "string" || !task) throw new TypeError("task names the task (e.g. \"ticket.resolve\")");
  if (!OUTCOMES.includes(outcome)) {
    throw new RangeError(`outcome is one of ${OUTCOMES.join(", ")}, not ${describe(outcome)}`);
  }
  const { score, details, ...rest } = options as TaskResultOptions & Record<string, unknown>;
  if (score !== undefined && (typeof score !== "number" || !Number.isFinite(score))) {
    throw new TypeError(`score is a number, not ${describe(score)}`);
  }
  const event: Record<string, unknown> = {
    type: "rlaas.task_result",
    interaction_id: checkUuid(interactionId, "interactionId"),
    task,
    outcome,
  };
  if (score !== undefined) event.score = score;
  if (details !== undefined) event.details = { ...details };
  return withEnvelope(event, rest, []) as unknown as EventInput<"rlaas.task_result">;
}

function withEnvelope(event: Record<string, unknown>, options: Record<string, unknown>,
                      taken: readonly string[]): Record<string, unknown> {
  const unknown = Object.keys(options).filter((name) => !taken.includes(name) &&
    !(ENVELOPE as readonly string[]).includes(name)).sort();
  if (unknown.length) {
    throw new TypeError(`unexpected option(s) ${unknown.join(", ")}; the envelope has ${ENVELOPE.join(", ")}`);
  }
  for (const name of ENVELOPE) {
    if (options[name] !== undefined && options[name] !== null) event[name] = options[name];
  }
  return event;
}

function checkUuid(value: unknown, name: string): string {
  if (typeof value !== "string" || !UUID.test(value)) {
    throw new TypeError(`${name} is a UUID (the X-Flywheel-Interaction-Id header), not ${describe(value)}`);
  }
  return value;
}

function isoTime(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError("ts is an invalid Date");
  return date.toISOString();
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.slice(0, 40));
  return value === null ? "null" : Array.isArray(value) ? "an array" : String(value).slice(0, 40);
}
