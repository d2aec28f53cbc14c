import { readFileSync } from "node:fs";
import { Model } from "../extension/host/engine";
import { demoModelPath } from "../extension/host/native";
async function main() {
  const model = await Model.load(demoModelPath());
  const text = readFileSync("/usr/lib/python3.11/textwrap.py", "utf8");
  const tokens = (await model.tokenize(text)).slice(0, 512);
  for (const kv of [{ policy: "full" as const }, { policy: "pyramid" as const, targetRatio: 0.5 }, { policy: "pyramid" as const, targetRatio: 0.3 }, { policy: "h2o" as const, targetRatio: 0.5 }, { policy: "streaming" as const, targetRatio: 0.5 }]) {
    let t = performance.now();
    const s = await model.createSession({ contextSize: 512, threads: 2, kv });
    const tc = performance.now() - t;
    t = performance.now();
    const lp = await s.logProbs(tokens, 448);
    const tl = performance.now() - t;
    const st = s.kvStats();
    const ppl = Math.exp(-lp.reduce((a, b) => a + b, 0) / lp.length);
    const lines = text.split("\n");
    const prefix = lines.slice(100, 130).join("\n") + "\n";
    const suffix = lines.slice(131, 136).join("\n") + "\n";
    t = performance.now();
    const s2 = await model.createSession({ contextSize: 512, threads: 2, kv });
    const r = await s2.generate({ infill: { prefix, suffix, format: "spm" } }, { maxTokens: 24, stop: ["\n"] });
    const tg = performance.now() - t;
    console.log(JSON.stringify(kv), { tc, tl, ppl, ratio: st.bytes / st.fullBytes, per: st.perLayer.map((l) => l.tokens), decay: st.decayRatio, recent: st.recentRatio, tg, text: r.text, timings: r.timings, ratio2: r.kv.bytes / r.kv.fullBytes, per2: r.kv.perLayer.map((l) => l.tokens) });
  }
}
main();
