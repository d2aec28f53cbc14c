// Perplexity of the trained demo model on real source: ours (the CLI's computation over our logits) against the
// same formula over llama.cpp's logits for the same tokens.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Token } from "node-llama-cpp";
import { expect, it } from "vitest";

import { perplexity } from "../../extension/core/perplexity";
import { Model } from "../../extension/host/engine";
import { demoModelPath } from "../../extension/host/native";
import { referenceModel } from "../support/llama-cpp";

it("matches llama.cpp's perplexity on a source file within 0.1%", async () => {
  const text = readFileSync(path.resolve(__dirname, "../../extension/bench.ts"), "utf8");
  const model = await Model.load(demoModelPath());
  const session = await model.createSession({ contextSize: 256, threads: 2 });
  const vocab = model.info.config.vocabSize;
  const tokens = [1, ...Array.from(await model.tokenize(text, { addBos: false })).slice(0, 191)];
  const ours = perplexity(await session.evaluate(tokens, { logits: "all" }), vocab, tokens);
  session.dispose();
  model.dispose();

  const reference = await referenceModel(demoModelPath());
  const context = await reference.createContext({ contextSize: 256, batchSize: 256, flashAttention: false, threads: 2 });
  const outputs = await context.getSequence().controlledEvaluate(tokens.map((t) => [t as Token, { generateNext: { logits: true } }]));
  const logits = new Float32Array(tokens.length * vocab);
  outputs.forEach((output, i) => {
    for (const [token, logit] of output!.next!.logits!) logits[i * vocab + token] = logit;
  });
  const theirs = perplexity(logits, vocab, tokens);
  await context.dispose();
  await reference.dispose();

  console.log(`demo model perplexity over ${tokens.length - 1} tokens: ours ${ours.toFixed(4)}, llama.cpp ${theirs.toFixed(4)}`);
  expect(Math.abs(ours - theirs) / theirs).toBeLessThan(1e-3);
});
