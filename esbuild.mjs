// Bundles the TypeScript entry points into dist/. The native addon is not bundled: it is loaded at run time from
// build/Release by extension/host/native.ts, and only in processes that run the engine (never the extension host).
import { build } from "esbuild";
import { chmodSync } from "node:fs";

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  minify: process.argv.includes("--minify"),
  logLevel: "info",
};

await build({
  ...common,
  entryPoints: { cli: "extension/cli.ts" },
  outdir: "dist",
  banner: { js: "#!/usr/bin/env node" },
  // llama.cpp is only a benchmark reference, present in development installs.
  external: ["node-llama-cpp"],
});
chmodSync("dist/cli.js", 0o755);
