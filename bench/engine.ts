// Our engine against llama.cpp, side by side in one run, on generated models of real shapes (random weights: speed
// does not depend on their values). Prints the tables README.md quotes.
//   npm run bench -- engine [--shapes tinyllama] [--types Q4_0,Q8_0,Q4_K_M] [--pp 512] [--tg 128] [--depth 0,4096]
//                           [--policies full,pyramid@0.45] [--whole-prompt] [--repetitions 3] [--threads 2] [--json]
// A policy is a name with an optional @targetRatio (pyramid@0.45, h2o@0.5).
import { parseArgs } from "node:util";

import { formatBenchTable, runBench, type BenchRow } from "../extension/bench";
import type { KvPolicyName, KvPolicyOptions } from "../extension/host/native";
import { SHAPES, testModelPath, type WeightType } from "../test/support/test-models";

const SHAPE_NAMES: Record<string, keyof typeof SHAPES> = { tinyllama: "tinyllama", "7b": "codellama7bLike" };

function parsePolicy(text: string): KvPolicyOptions {
  const [name, target] = text.split("@");
  return { policy: name as KvPolicyName, ...(target ? { targetRatio: Number(target) } : {}) };
}

async function main() {
  const { values } = parseArgs({
    options: {
      shapes: { type: "string", default: "tinyllama" },
      pp: { type: "string", default: "512" },
      tg: { type: "string", default: "128" },
      depth: { type: "string", default: "0,4096" },
      repetitions: { type: "string", default: "3" },
      threads: { type: "string", default: "2" },
      types: { type: "string", default: "Q4_0,Q8_0,Q4_K_M" },
      policies: { type: "string", default: "full" },
      "whole-prompt": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const depths = values.depth.split(",").map(Number);
  const rows: BenchRow[] = [];
  for (const shapeName of values.shapes.split(",")) {
    const shape = SHAPES[SHAPE_NAMES[shapeName] ?? (shapeName as keyof typeof SHAPES)];
    if (!shape) throw new Error(`unknown shape ${shapeName}: use ${Object.keys(SHAPE_NAMES).join(", ")}`);
    for (const type of values.types.split(",") as WeightType[]) {
      const contextLength = Math.max(16384, ...depths.map((d) => d + Number(values.pp) + Number(values.tg) + 1));
      const modelPath = testModelPath({ ...shape, weightType: type, fill: "random-blocks", contextLength });
      for await (const row of runBench({
        modelPath,
        pp: Number(values.pp),
        tg: Number(values.tg),
        depths,
        threads: Number(values.threads),
        repetitions: Number(values.repetitions),
        engines: ["pyramid-coder", "llama.cpp"],
        policies: values.policies.split(",").map(parsePolicy),
        wholePrompt: values["whole-prompt"],
      })) {
        rows.push({ ...row, model: `${shapeName}-${type}` });
        if (values.json) console.log(JSON.stringify(rows[rows.length - 1]));
        else console.error(`${row.engine} ${row.policy} ${shapeName} ${type} depth ${row.depth}: pp ${row.pp_tok_s.toFixed(1)} tok/s, tg ${row.tg_tok_s.toFixed(2)} tok/s, KV ${((100 * row.kv_bytes) / row.kv_full_bytes).toFixed(1)}%`);
      }
    }
  }
  if (!values.json) console.log(formatBenchTable(rows));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
