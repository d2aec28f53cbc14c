// The VSIX as `npm run package` builds it: what it holds (bundles, the native addon, manifest, README) and what it
// must not (sources, engine, tests, benchmarks, node_modules, the demo model, source maps), the manifest's settings
// and commands, and the packaged engine host actually completing code from an unpacked copy, as in an install.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { EngineClient } from "../extension/host/engine-client";
import { demoModelPath } from "../extension/host/native";

const ROOT = path.resolve(__dirname, "..");

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

/** The entries of a zip file, from its central directory (no zip64: a VSIX of this size never needs it). */
function zipEntries(zip: Buffer): ZipEntry[] {
  const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
  const CENTRAL_FILE_HEADER = 0x02014b50;
  // The end record is the last 22 bytes plus a comment of at most 65535.
  let end = -1;
  for (let at = zip.length - 22; at >= Math.max(0, zip.length - 22 - 0xffff); at--) {
    if (zip.readUInt32LE(at) === END_OF_CENTRAL_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error("not a zip file: no end of central directory record");
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== CENTRAL_FILE_HEADER) throw new Error(`bad central directory entry ${i} at ${at}`);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    entries.push({
      method: zip.readUInt16LE(at + 10),
      compressedSize: zip.readUInt32LE(at + 20),
      size: zip.readUInt32LE(at + 24),
      localHeaderOffset: zip.readUInt32LE(at + 42),
      name: zip.toString("utf8", at + 46, at + 46 + nameLength),
    });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function zipRead(zip: Buffer, entry: ZipEntry): Buffer {
  const LOCAL_FILE_HEADER = 0x04034b50;
  const at = entry.localHeaderOffset;
  if (zip.readUInt32LE(at) !== LOCAL_FILE_HEADER) throw new Error(`bad local header for ${entry.name}`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  const data = zip.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return Buffer.from(data);
  if (entry.method === 8) return inflateRawSync(data);
  throw new Error(`${entry.name}: unsupported compression method ${entry.method}`);
}

/** Builds the VSIX with the project's own script, into a folder of this test's (other runs may package meanwhile). */
function buildVsix(outDir: string): string {
  const out = path.join(outDir, "pyramid-coder.vsix");
  execFileSync("npm", ["run", "package", "--", "--out", out], { cwd: ROOT, stdio: "pipe", timeout: 120_000 });
  return out;
}

/** The settings DESIGN.md lists, all under pyramidCoder. */
const DESIGN_SETTINGS = [
  "modelPath", "contextSize", "threads", "gpuLayers", "idleUnloadMinutes",
  "kv.policy", "kv.targetRatio", "kv.recentRatio", "kv.decayRatio", "kv.layerInterval", "kv.minContext", "kv.sinkTokens", "kv.distanceWeight",
  "completion.enabled", "completion.languages", "completion.debounceMs", "completion.maxTokens", "completion.maxLines",
  "completion.contextLinesBefore", "completion.contextLinesAfter", "completion.fimFormat", "completion.temperature",
  "explain.maxTokens",
];

let work: string;
let vsix: string;
let zip: Buffer;
let entries: ZipEntry[];

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), "pyramid-package-test-"));
  vsix = buildVsix(work);
  zip = readFileSync(vsix);
  entries = zipEntries(zip);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const entry = (name: string) => entries.find((e) => e.name === name);

describe("the VSIX", () => {
  it("holds the bundles, the native addon, the webviews' files, the manifest, the README and the license", () => {
    const names = entries.map((e) => e.name);
    for (const name of [
      "extension/package.json",
      "extension/dist/extension.js",
      "extension/dist/engine-host.js",
      "extension/dist/cli.js",
      "extension/build/Release/pyramid_coder.node",
      "extension/media/panel.css",
      "extension/media/status-panel.js",
      "extension/media/explain-panel.js",
      "extension/media/pyramid.svg",
      "extension/media/walkthrough/model.md",
      "extension.vsixmanifest",
    ]) {
      expect(names).toContain(name);
    }
    expect(names.some((name) => /^extension\/readme\.md$/i.test(name))).toBe(true);
    expect(names.some((name) => /^extension\/license(\.txt)?$/i.test(name))).toBe(true);
  });

  it("holds nothing else: no sources, engine, tests, benchmarks, node_modules, demo model or source maps", () => {
    const allowed =
      /^(\[Content_Types\]\.xml|extension\.vsixmanifest|extension\/(package\.json|readme\.md|license(\.txt)?|dist\/(extension|engine-host|cli)\.js|build\/Release\/pyramid_coder\.node|media\/[\w-]+\.(css|js|svg)|media\/walkthrough\/\w+\.md))$/i;
    expect(entries.map((e) => e.name).filter((name) => !allowed.test(name))).toEqual([]);
    const forbidden = /^extension\/(test|engine|kernels|bench|node_modules|media\/models|extension|build-sanitize)\/|\.map$|\.ts$|\.gguf$/;
    expect(entries.filter((e) => forbidden.test(e.name))).toEqual([]);
    expect(statSync(vsix).size).toBeLessThan(5 * 1024 * 1024);
  });

  it("carries the addon as built, byte for byte", () => {
    const addon = readFileSync(path.join(ROOT, "build", "Release", "pyramid_coder.node"));
    expect(zipRead(zip, entry("extension/build/Release/pyramid_coder.node")!).equals(addon)).toBe(true);
  });

  it("targets linux-x64", () => {
    expect(zipRead(zip, entry("extension.vsixmanifest")!).toString("utf8")).toMatch(/TargetPlatform="linux-x64"/);
  });

  it("declares every setting of the design, with a description, and the commands", () => {
    const manifest = JSON.parse(zipRead(zip, entry("extension/package.json")!).toString("utf8"));
    expect(manifest.main).toBe("./dist/extension.js");
    const properties = manifest.contributes.configuration.properties as Record<string, { markdownDescription?: string; default?: unknown }>;
    for (const name of DESIGN_SETTINGS) {
      expect(properties, name).toHaveProperty([`pyramidCoder.${name}`]);
      expect(properties[`pyramidCoder.${name}`].markdownDescription, name).toBeTruthy();
      expect(properties[`pyramidCoder.${name}`], name).toHaveProperty("default");
    }
    expect(properties["pyramidCoder.kv.policy"]).toMatchObject({ enum: ["pyramid", "full", "streaming", "h2o"] });
    expect(properties["pyramidCoder.completion.fimFormat"]).toMatchObject({ enum: ["spm", "psm"], default: "spm" });
    const commands = manifest.contributes.commands.map((c: { command: string }) => c.command);
    expect(commands).toEqual(expect.arrayContaining([
      "pyramidCoder.toggle", "pyramidCoder.selectModel", "pyramidCoder.selectExplainModel", "pyramidCoder.downloadModel",
      "pyramidCoder.explainSelection", "pyramidCoder.showStatus", "pyramidCoder.showLog",
    ]));
  });

  it("declares the status panel, the Explain menu item and the walkthrough, with every file they name inside", () => {
    const manifest = JSON.parse(zipRead(zip, entry("extension/package.json")!).toString("utf8"));
    const { viewsContainers, views, menus, walkthroughs } = manifest.contributes;
    expect(views.pyramidCoder).toEqual([expect.objectContaining({ type: "webview", id: "pyramidCoder.status" })]);
    expect(menus["editor/context"]).toEqual([expect.objectContaining({ command: "pyramidCoder.explainSelection", when: "editorHasSelection" })]);
    const files = [viewsContainers.panel[0].icon, ...walkthroughs[0].steps.map((step: { media: { markdown: string } }) => step.media.markdown)];
    expect(files).toHaveLength(5);
    for (const file of files) expect(entry(`extension/${file}`), file).toBeDefined();
    const stepCommands = walkthroughs[0].steps.flatMap((step: { description: string }) => [...step.description.matchAll(/\(command:(pyramidCoder\.\w+)/g)].map((m) => m[1]));
    const declared = manifest.contributes.commands.map((c: { command: string }) => c.command);
    expect(stepCommands.length).toBeGreaterThan(0);
    for (const command of stepCommands) expect(declared).toContain(command);
  });

  it("keeps the engine out of the extension bundle: it requires only Node built-ins and vscode", () => {
    const extension = zipRead(zip, entry("extension/dist/extension.js")!).toString("utf8");
    const required = [...extension.matchAll(/\brequire\(["']([^"']+)["']\)/g)].map((m) => m[1]);
    expect(required.filter((name) => name !== "vscode" && !name.startsWith("node:") && !["child_process", "fs", "path", "os", "events"].includes(name))).toEqual([]);
    expect(extension).not.toMatch(/pyramid_coder\.node|node-llama-cpp/);
  });

  it("completes code with the packaged engine host, unpacked as VS Code installs it", async () => {
    const installed = path.join(work, "installed");
    for (const e of entries.filter((e) => e.name.startsWith("extension/"))) {
      const file = path.join(installed, e.name.slice("extension/".length));
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, zipRead(zip, e));
    }
    const client = new EngineClient(path.join(installed, "dist", "engine-host.js"));
    try {
      const result = await client.complete(
        { path: demoModelPath(), contextSize: 256, threads: 1, kv: { policy: "pyramid" } },
        { prefix: "def add(a, b):\n    return ", suffix: "\n", format: "spm", maxTokens: 8 },
      );
      expect(result.timings.genTokens).toBeGreaterThan(0);
      expect(result.kv).toMatchObject({ policy: "pyramid" });
    } finally {
      await client.dispose();
    }
  });
});
