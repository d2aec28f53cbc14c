// The command line's KV cache policy flags, parsed in one place into the engine's KvPolicyOptions. Only their form is
// checked here (known policy names, numbers, whole counts); ranges are the engine's to check, so that its message is
// the one users see.
import type { KvPolicyName, KvPolicyOptions } from "../host/native";

/** A flag the user wrote wrongly (the command line reports it as a usage error). */
export class KvFlagError extends Error {}

const POLICY_NAMES: readonly KvPolicyName[] = ["full", "pyramid", "streaming", "h2o"];

// Each numeric flag and the option it sets. Counts of tokens or layers must be whole: the engine would truncate a
// fraction without a word.
const NUMERIC_FLAGS = {
  "target-ratio": { option: "targetRatio", whole: false },
  "recent-ratio": { option: "recentRatio", whole: false },
  "decay-ratio": { option: "decayRatio", whole: false },
  "distance-weight": { option: "distanceWeight", whole: false },
  "gen-decay-ratio": { option: "genDecayRatio", whole: false },
  "gen-compress-ratio": { option: "genCompressRatio", whole: false },
  "sink-tokens": { option: "sinkTokens", whole: true },
  "min-context": { option: "minContext", whole: true },
  "layer-interval": { option: "layerInterval", whole: true },
  "exceed-length": { option: "exceedLength", whole: true },
  "max-layer-tokens": { option: "maxLayerTokens", whole: true },
} as const satisfies Record<string, { option: keyof KvPolicyOptions; whole: boolean }>;

type NumericFlag = keyof typeof NUMERIC_FLAGS;

/** node:util parseArgs specs of the KV flags, to merge into a command line's own. */
export const KV_FLAG_OPTIONS = {
  policy: { type: "string" },
  "no-decode-compression": { type: "boolean" },
  ...(Object.fromEntries(Object.keys(NUMERIC_FLAGS).map((flag) => [flag, { type: "string" }])) as Record<NumericFlag, { type: "string" }>),
} as const;

export type KvFlagValues = { policy?: string; "no-decode-compression"?: boolean } & { [Flag in NumericFlag]?: string };

function isPolicyName(name: string): name is KvPolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

/**
 * One KvPolicyOptions per policy that --policy names (a comma list; full when absent), all tuned by the same flags.
 * Full keeps every token and ignores tuning, so it carries none (a bench row would be mislabelled "full@0.5").
 */
export function parseKvFlags(values: KvFlagValues): KvPolicyOptions[] {
  const tuning: KvPolicyOptions = {};
  const given: string[] = [];
  for (const [flag, { option, whole }] of Object.entries(NUMERIC_FLAGS) as [NumericFlag, (typeof NUMERIC_FLAGS)[NumericFlag]][]) {
    const text = values[flag];
    if (text === undefined) continue;
    const value = Number(text);
    if (text.trim() === "" || !(whole ? Number.isInteger(value) : Number.isFinite(value))) {
      throw new KvFlagError(`--${flag} must be ${whole ? "a whole number" : "a number"}, got "${text}"`);
    }
    tuning[option] = value;
    given.push(`--${flag}`);
  }
  if (values["no-decode-compression"]) {
    tuning.decodeCompression = false;
    given.push("--no-decode-compression");
  }
  const policies = (values.policy ?? "full").split(",").map((name): KvPolicyOptions => {
    const policy = name.trim();
    if (!isPolicyName(policy)) throw new KvFlagError(`unknown KV policy "${policy}": use ${POLICY_NAMES.join(", ")}`);
    return policy === "full" ? { policy } : { policy, ...tuning };
  });
  // Tuning with no policy named is a forgotten --policy, not a request for the untunable default.
  if (given.length && values.policy === undefined) {
    throw new KvFlagError(`KV tuning (${given.join(", ")}) needs a compressing policy: name one with --policy pyramid, streaming or h2o`);
  }
  return policies;
}
