// Where the platform says the client is about to go away, without importing anything
// platform-specific (this module is loaded in browsers too).
//
// Browsers: `visibilitychange` to hidden is the last event a page reliably gets (on
// mobile a hidden page may be killed without `pagehide`), and `pagehide` covers
// navigations and reloads; both may fire, the handler runs for each.
// Node: `beforeExit` fires when the event loop is empty (there is still time for async
// work); `exit` fires on process.exit() and at the very end (synchronous work only).

type Unhook = () => void;

/** Call `hidden` when the page is hidden or goes away; the function that stops it. No-op outside a page. */
export function onPageHide(hidden: () => void): Unhook {
  const doc = (globalThis as { document?: Document }).document;
  if (!doc || typeof globalThis.addEventListener !== "function") return () => undefined;
  const visibility = () => {
    if (doc.visibilityState === "hidden") hidden();
  };
  globalThis.addEventListener("pagehide", hidden);
  doc.addEventListener("visibilitychange", visibility);
  return () => {
    globalThis.removeEventListener("pagehide", hidden);
    doc.removeEventListener("visibilitychange", visibility);
  };
}

/** Call `idle` once when a Node process has nothing left to do, `exiting` when it exits. No-op elsewhere. */
export function onProcessExit(idle: () => void, exiting: () => void): Unhook {
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  if (!proc?.versions?.node || typeof proc.once !== "function") return () => undefined;
  proc.once("beforeExit", idle);
  proc.once("exit", exiting);
  return () => {
    proc.off("beforeExit", idle);
    proc.off("exit", exiting);
  };
}
