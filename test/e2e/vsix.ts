// The VSIX files the end-to-end tests install: the extension as `npm run package` ships it, and the harness's fixture.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync } from "node:fs";
import path from "node:path";

export const REPO_ROOT = path.resolve(__dirname, "../..");

export type VsixResult = { vsix: string } | { unavailable: string };

/**
 * The packaged extension: $PYRAMID_E2E_VSIX when set, else a fresh `npm run package` into `outDir` (always run, so the
 * test never installs a stale VSIX; the bundles and the addon build incrementally). Unavailable, with the reason,
 * where package.json has no package script.
 */
export function packagedExtension(outDir: string, log: (line: string) => void = () => {}): VsixResult {
  if (process.env.PYRAMID_E2E_VSIX) return { vsix: path.resolve(process.env.PYRAMID_E2E_VSIX) };
  const scripts = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")).scripts ?? {};
  if (!scripts.package) return { unavailable: "package.json has no `package` script (npm run package builds the VSIX)" };
  const started = Date.now();
  const vsix = path.join(outDir, "pyramid-coder.vsix");
  const result = spawnSync("npm", ["run", "package", "--", "--out", vsix], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0 || !existsSync(vsix)) {
    throw new Error(`npm run package -- --out ${vsix} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
  }
  log(`npm run package: ${vsix} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { vsix };
}

/** Packs test/e2e/fixture-extension with vsce (from a copy in `outDir`) and returns the VSIX. */
export function fixtureExtension(outDir: string): string {
  const source = path.join(outDir, "fixture-extension");
  cpSync(path.join(__dirname, "fixture-extension"), source, { recursive: true });
  const vsix = path.join(outDir, "e2e-fixture.vsix");
  const vsce = path.join(REPO_ROOT, "node_modules", ".bin", "vsce");
  const result = spawnSync(
    vsce,
    ["package", "--no-dependencies", "--allow-missing-repository", "--skip-license", "--out", vsix],
    { cwd: source, encoding: "utf8", timeout: 120_000 },
  );
  if (result.status !== 0 || !existsSync(vsix)) {
    throw new Error(`vsce package of the fixture failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
  }
  return vsix;
}
