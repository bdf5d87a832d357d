// Compile-time checks of the public types (npm run check-api: tsc --noEmit). Each line
// marked as an expected error must be one, or tsc fails: the generated types reject it.

import { Client, type EventInput, type Feedback, type IngestResult, type KnownEvents } from "../src/index.js";
import { FileBuffer } from "../src/node.js";

const fw = new Client({ url: "http://127.0.0.1:1", apiKey: "fw_x", buffer: new FileBuffer("/tmp/x") });
const interaction = "6f1c2b8e-8a57-4c43-9a35-0d1f0b7f6c11";

// Any event type goes; the types the server's schemas name are checked field by field.
fw.track("core.generic", { subject_id: "u-1", attributes: { page: "checkout" } });
fw.track("myplugin.anything", { whatever: [1, 2, 3] });
fw.send({ type: "rlaas.task_result", interaction_id: interaction, task: "t", outcome: "success", ts: new Date() });
// @ts-expect-error: core.generic has no field "page" (additionalProperties: false in its schema)
fw.track("core.generic", { page: "checkout" });
// @ts-expect-error: an outcome the schema does not list
fw.send({ type: "rlaas.task_result", interaction_id: interaction, task: "t", outcome: "won" });
// @ts-expect-error: interaction_id is required by rlaas.feedback's schema
fw.track("rlaas.feedback", { signal: { kind: "thumbs", value: "up" } });

// The helpers take exactly one signal.
fw.feedback(interaction, { thumbs: "up", subject_id: "u-1" });
fw.feedback(interaction, { rating: 4, comment: "close" });
fw.feedback(interaction, { compare_with: interaction, preferred: "tie" });
// @ts-expect-error: two signals
fw.feedback(interaction, { thumbs: "up", rating: 4 });
// @ts-expect-error: a rating is 1 to 5
fw.feedback(interaction, { rating: 6 });
// @ts-expect-error: a comparison names which one is preferred
fw.feedback(interaction, { compare_with: interaction });
// @ts-expect-error: not an outcome
fw.taskResult(interaction, "ticket.resolve", "won");

// Generated types are exported by name.
const signal: Feedback["signal"] = { kind: "edit", corrected_text: "fixed" };
const result: IngestResult = { accepted: 1, duplicate: 0, rejected: 0 };
const tag: keyof KnownEvents = "rlaas.interaction";
const input: EventInput<"core.generic"> = { type: "core.generic" };
void [signal, result, tag, input];
