// Our engine against llama.cpp, side by side in one run, on generated TinyLlama-1.1B-shaped models in Q4_0, Q8_0
// and a Q4_K_M mix (random weights: speed does not depend on their values). Prints the table README.md quotes.
//   npm run bench -- engine [--pp 512] [--tg 128] [--depth 0,4096] [--repetitions 3] [--threads 2] [--types Q4_0,Q8_0,Q4_K_M] [--json]
import { parseArgs } from "node:util";

import { formatBenchTable, runBench, type BenchRow } from "../extension/bench";
import { SHAPES, testModelPath, type WeightType } from "../test/support/test-models";

async function main() {
  const { values } = parseArgs({
    options: {
      pp: { type: "string", default: "512" },
      tg: { type: "string", default: "128" },
      depth: { type: "string", default: "0,4096" },
      repetitions: { type: "string", default: "3" },
      threads: { type: "string", default: "2" },
      types: { type: "string", default: "Q4_0,Q8_0,Q4_K_M" },
      json: { type: "boolean", default: false },
    },
  });
  const rows: BenchRow[] = [];
  for (const type of values.types.split(",") as WeightType[]) {
    const modelPath = testModelPath({ ...SHAPES.tinyllama, weightType: type, fill: "random-blocks", contextLength: 8192 });
    for await (const row of runBench({
      modelPath,
      pp: Number(values.pp),
      tg: Number(values.tg),
      depths: values.depth.split(",").map(Number),
      threads: Number(values.threads),
      repetitions: Number(values.repetitions),
      engines: ["pyramid-coder", "llama.cpp"],
      policy: "full",
    })) {
      rows.push({ ...row, model: `tinyllama-1.1b-${type}` });
      if (values.json) console.log(JSON.stringify(rows[rows.length - 1]));
      else console.error(`${row.engine} ${type} depth ${row.depth}: pp ${row.pp_tok_s.toFixed(1)} tok/s, tg ${row.tg_tok_s.toFixed(2)} tok/s`);
    }
  }
  if (!values.json) console.log(formatBenchTable(rows));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
