// A random (version 4) UUID. crypto.randomUUID exists only in secure contexts (https,
// localhost); getRandomValues exists everywhere the SDK runs (browsers, workers,
// extensions, Node 18+), so the id is built from it.

export function uuid4(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A batch's Idempotency-Key: 32 hex digits, like the Python SDK's. */
export function newKey(): string {
  return uuid4().replace(/-/g, "");
}
