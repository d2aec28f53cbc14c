// The retention controls' settings writes: what a webview posts becomes a checked setting value (text from an input
// element included), anything else is refused with a message naming the control; and the controls' ranges are the
// ones package.json declares, so the panel can never write what the Settings UI would reject.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { RETENTION_CONTROLS, RetentionInputError, retentionPreviewOptions, retentionSettingWrite } from "../../extension/core/retention";

const MANIFEST = JSON.parse(readFileSync(path.resolve(__dirname, "../../package.json"), "utf8"));
const PROPERTIES: Record<string, { minimum?: number; maximum?: number; type: string; enum?: string[] }> = MANIFEST.contributes.configuration.properties;

describe("retentionSettingWrite", () => {
  it("writes numbers, given as numbers or as an input's text, to the kv settings", () => {
    expect(retentionSettingWrite("recentRatio", 0.1)).toEqual({ setting: "kv.recentRatio", value: 0.1 });
    expect(retentionSettingWrite("targetRatio", "0.45")).toEqual({ setting: "kv.targetRatio", value: 0.45 });
    expect(retentionSettingWrite("sinkTokens", "8")).toEqual({ setting: "kv.sinkTokens", value: 8 });
    expect(retentionSettingWrite("policy", "h2o")).toEqual({ setting: "kv.policy", value: "h2o" });
  });

  const refused: [string, unknown, unknown, RegExp][] = [
    ["an unknown control", "distanceWeight", 1, /unknown retention setting "distanceWeight"/],
    ["a prototype key", "__proto__", 1, /unknown retention setting/],
    ["a ratio above 1", "decayRatio", 1.5, /Decay ratio must be between 0 and 1, not 1.5/],
    ["a negative count", "minContext", -1, /Minimum context must be between 0 and 1048576/],
    ["a fractional interval", "layerInterval", "2.5", /Layer interval must be a whole number, not 2.5/],
    ["an interval of 0", "layerInterval", 0, /Layer interval must be between 1 and 64/],
    ["empty text", "recentRatio", "", /Recent ratio must be a number, not ""/],
    ["text that is no number", "recentRatio", "abc", /must be a number, not "abc"/],
    ["Infinity", "targetRatio", Infinity, /must be a number/],
    ["an object", "targetRatio", { value: 1 }, /must be a number/],
    ["an unknown policy", "policy", "lru", /Policy must be one of pyramid, full, streaming, h2o, not "lru"/],
  ];
  it.each(refused)("refuses %s", (_name, key, value, message) => {
    expect(() => retentionSettingWrite(key, value)).toThrow(RetentionInputError);
    expect(() => retentionSettingWrite(key, value)).toThrow(message);
  });

  it("covers exactly the settings the issue names, with package.json's ranges and choices", () => {
    expect(RETENTION_CONTROLS.map((control) => control.key)).toEqual([
      "policy", "targetRatio", "recentRatio", "decayRatio", "sinkTokens", "minContext", "layerInterval",
    ]);
    for (const control of RETENTION_CONTROLS) {
      const declared = PROPERTIES[`pyramidCoder.kv.${control.key}`];
      expect(declared, control.key).toBeDefined();
      if (control.kind === "select") {
        expect([...control.options].sort()).toEqual([...declared.enum!].sort());
      } else {
        expect([control.min, control.max], control.key).toEqual([declared.minimum, declared.maximum]);
        expect(control.whole, control.key).toBe(declared.type === "integer");
      }
    }
  });
});

describe("retentionPreviewOptions", () => {
  it("lays checked unsaved values over the saved options", () => {
    const saved = { policy: "pyramid" as const, recentRatio: 0.2, decayRatio: 0.9 };
    expect(retentionPreviewOptions(saved, { decayRatio: "0.5", policy: "streaming" })).toEqual({ policy: "streaming", recentRatio: 0.2, decayRatio: 0.5 });
    expect(saved.decayRatio).toBe(0.9);
  });

  it("refuses the whole preview when one value is bad", () => {
    expect(() => retentionPreviewOptions({}, { decayRatio: 0.5, recentRatio: 3 })).toThrow(/Recent ratio must be between 0 and 1/);
  });
});
