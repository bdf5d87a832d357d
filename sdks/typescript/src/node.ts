// @flywheel/sdk/node: everything in "@flywheel/sdk", plus the file buffer for Node.
//
//   import { Client, FileBuffer } from "@flywheel/sdk/node";
//   const fw = new Client({ url, apiKey, buffer: new FileBuffer("/var/lib/my-app/flywheel") });

export * from "./index.js";
export { BufferLocked, FileBuffer, fileBuffer } from "./file-store.js";
