// Model loading costs no more than mapping the file: load_bench (engine/load_bench.cc) times mmap alone, the GGUF
// parse and the whole model load (configuration validation and tokenizer included), cold and warm, on a generated
// TinyLlama-1.1B-shaped Q4_0 file (~640 MB), the same shape in Q8_0 (~1.2 GB) and the 15 MB demo model.
import { execFileSync } from "node:child_process";
import path from "node:path";

import { demoModelPath, packageRoot } from "../extension/host/native";
import { SHAPES, testModelPath } from "../test/support/test-models";

interface Row {
  file: string;
  bytes: number;
  stage: string;
  cache: string;
  median_ms: number;
}

async function main() {
  const repeat = process.argv.includes("--quick") ? "3" : "7";
  const files = [
    await testModelPath({ ...SHAPES.tinyllama, weightType: "Q4_0", fill: "random-blocks" }),
    await testModelPath({ ...SHAPES.tinyllama, weightType: "Q8_0", fill: "random-blocks" }),
    demoModelPath(),
  ];
  const binary = path.join(packageRoot(), "build", "engine", "load_bench");
  const output = execFileSync(binary, ["--repeat", repeat, ...files], { encoding: "utf8" });
  const rows: Row[] = output.trim().split("\n").map((line) => JSON.parse(line));
  if (process.argv.includes("--json")) {
    for (const row of rows) console.log(JSON.stringify(row));
    return;
  }
  console.log("| file | size | cache | mmap only | GGUF parse | model load |");
  console.log("|---|---|---|---|---|---|");
  for (const file of files) {
    for (const cache of ["cold", "warm"]) {
      const at = (stage: string) => rows.find((r) => r.file === file && r.stage === stage && r.cache === cache)!;
      const mb = (at("mmap").bytes / 1e6).toFixed(0);
      const ms = (stage: string) => `${at(stage).median_ms.toFixed(2)} ms`;
      console.log(`| ${path.basename(file)} | ${mb} MB | ${cache} | ${ms("mmap")} | ${ms("gguf")} | ${ms("model")} |`);
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
