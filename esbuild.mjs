// Bundles the TypeScript entry points into dist/:
//   cli.js          the command line (loads the addon)
//   engine-host.js  the engine host child process (loads the addon)
//   extension.js    the VS Code extension (never loads the addon: it forks engine-host.js)
// The native addon is not bundled: it is loaded at run time from build/Release by extension/host/native.ts, and only
// in processes that run the engine. `--require-addon` (used by `npm run package`) fails when it has not been built,
// as a VSIX without it could not complete anything.
import { build } from "esbuild";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

// --outdir=DIR builds elsewhere (tests build their own copy, so that concurrent runs never read a half-written file).
const outdir = process.argv.find((arg) => arg.startsWith("--outdir="))?.slice("--outdir=".length) || "dist";

const common = {
  write: false,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  minify: process.argv.includes("--minify"),
  logLevel: "info",
};

if (process.argv.includes("--require-addon")) {
  const addon = "build/Release/pyramid_coder.node";
  if (!existsSync(addon) || statSync(addon).size === 0) {
    console.error(`${addon} is missing: build the native engine first (npm run build:addon)`);
    process.exit(1);
  }
}

/**
 * Writes what esbuild produced, but only files whose content changed, each through a rename: tests and packaging
 * that run at the same time as a rebuild never see a half-written bundle.
 */
function emit(result) {
  for (const file of result.outputFiles) {
    if (existsSync(file.path) && readFileSync(file.path).equals(file.contents)) continue;
    mkdirSync(path.dirname(file.path), { recursive: true });
    const temporary = `${file.path}.${process.pid}.tmp`;
    writeFileSync(temporary, file.contents);
    renameSync(temporary, file.path);
  }
  return result;
}

emit(await build({
  ...common,
  entryPoints: { cli: "extension/cli.ts" },
  outdir,
  banner: { js: "#!/usr/bin/env node" },
  // llama.cpp is only a benchmark reference, present in development installs.
  external: ["node-llama-cpp"],
}));
chmodSync(`${outdir}/cli.js`, 0o755);

emit(await build({
  ...common,
  entryPoints: { "engine-host": "extension/host/engine-host.ts" },
  outdir,
}));

const extension = await build({
  ...common,
  entryPoints: { extension: "extension/vscode/extension.ts" },
  outdir,
  // Provided by VS Code at run time.
  external: ["vscode"],
  metafile: true,
});
// The extension host must stay free of the engine: a native crash there would take every extension down.
const inputs = Object.keys(extension.metafile.inputs);
const forbidden = inputs.filter((input) => /extension\/host\/(native|engine)\.ts$|node-llama-cpp/.test(input));
if (forbidden.length) {
  console.error(`extension.js must not include the engine, but bundles ${forbidden.join(", ")}`);
  process.exit(1);
}
emit(extension);
