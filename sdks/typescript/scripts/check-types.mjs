// Fail when src/generated/ is not what the server's JSON Schemas generate today.
//
//   npm run check-types -- <schema-dir>     a dump from `flywheel schemas -o <schema-dir>`
//   npm run check-types                      runs `flywheel schemas` itself ($FLYWHEEL_BIN, else
//                                           `flywheel` on PATH, else ../../.venv/bin/flywheel)
//
// It regenerates into a temporary folder with the same generator and pinned packages
// (package-lock.json) and compares file by file. Exit 1 with the differences, 0 when equal.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generate } from "./generate-types.mjs";

const committed = fileURLToPath(new URL("../src/generated", import.meta.url));

function flywheelBin() {
  if (process.env.FLYWHEEL_BIN) return process.env.FLYWHEEL_BIN;
  const venv = fileURLToPath(new URL("../../../.venv/bin/flywheel", import.meta.url));
  try {
    execFileSync("flywheel", ["--help"], { stdio: "ignore" });
    return "flywheel";
  } catch {
    return venv;
  }
}

async function dumpSchemas(work) {
  const dir = join(work, "schemas");
  execFileSync(flywheelBin(), ["schemas", "-o", dir], { stdio: ["ignore", "ignore", "inherit"] });
  return dir;
}

async function files(dir) {
  return existsSync(dir) ? (await readdir(dir)).filter((f) => f.endsWith(".ts")).sort() : [];
}

/** The first lines where two texts differ, as a short -/+ listing. */
function firstDifferences(before, after, limit = 12) {
  const a = before.split("\n");
  const b = after.split("\n");
  const out = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < limit; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] !== undefined) out.push(`  line ${i + 1} - ${a[i]}`);
    if (b[i] !== undefined) out.push(`  line ${i + 1} + ${b[i]}`);
  }
  return out;
}

async function compare(fresh) {
  const problems = [];
  const [now, then] = [await files(fresh), await files(committed)];
  for (const name of then.filter((f) => !now.includes(f))) problems.push(`${name}: committed, no longer generated`);
  for (const name of now.filter((f) => !then.includes(f))) problems.push(`${name}: generated, not committed`);
  for (const name of now.filter((f) => then.includes(f))) {
    const [was, is] = [await readFile(join(committed, name), "utf8"), await readFile(join(fresh, name), "utf8")];
    if (was !== is) problems.push(`${name}: differs (- committed, + from the schemas)`, ...firstDifferences(was, is));
  }
  return problems;
}

const work = await mkdtemp(join(tmpdir(), "flywheel-check-types-"));
try {
  const given = process.argv[2] ?? process.env.FLYWHEEL_SCHEMAS;
  const schemaDir = given ?? (await dumpSchemas(work));
  const source = given ?? "what `flywheel schemas` writes now";
  const fresh = join(work, "generated");
  await generate(schemaDir, fresh);
  const problems = await compare(fresh);
  if (problems.length) {
    console.error(`src/generated/ has drifted from the schemas (${source}):`);
    for (const line of problems) console.error(line);
    console.error("Regenerate: npm run generate-types -- <schema-dir>, review, commit.");
    process.exitCode = 1;
  } else {
    console.log(`src/generated/ matches the schemas (${source})`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
