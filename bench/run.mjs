// `npm run bench -- <name> [args]`: bundles bench/<name>.ts with esbuild (the same toolchain as the extension) and
// runs it with Node. Without a name it lists the benchmarks.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const available = readdirSync(benchDir).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3));
const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <${available.join("|")}> [args]`);
  process.exit(name ? 2 : 0);
}
const outfile = path.join(benchDir, "..", "build", "bench", `${name}.js`);
await build({
  entryPoints: [path.join(benchDir, `${name}.ts`)],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  external: ["node-llama-cpp"],
  logLevel: "warning",
});
const run = spawnSync(process.execPath, [outfile, ...args], { stdio: "inherit" });
process.exit(run.status ?? 1);
