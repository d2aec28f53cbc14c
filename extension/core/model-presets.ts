// The models "Download Model" offers: the built-in presets and those of the pyramidCoder.download.presets setting,
// checked like any hand-edited setting, and what each costs in memory at the configured context: the weights, plus the KV
// cache that the engine's plan (the same pure function the engine follows) predicts for a full prompt.
import { formatBytes, formatCount } from "./format";

export type PresetKind = "base" | "instruct";

export interface ModelPreset {
  label: string;
  /** https only; the file name is its last path segment. */
  url: string;
  /** Hex SHA-256 of the file. Absent: the server's own (Hugging Face sends it as X-Linked-Etag) is checked. */
  sha256?: string;
  /** Approximate size for the list and the disk check before starting (the server's Content-Length decides). */
  sizeBytes: number;
  /** base: completion (infill); instruct: explanations too. */
  kind: PresetKind;
  /** The model's shape, for the memory estimate: layers and KV width (KV heads x head size). */
  layers: number;
  kvDim: number;
}

// TheBloke's conversions of Meta's CodeLlama at Q4_K_M, the common choice (ENGINE-NOTES.md). 7B: 32 layers of
// 32 heads of 128; 13B: 40 layers of 40 heads of 128; no grouped-query attention, so kvDim = dim.
export const DEFAULT_PRESETS: readonly ModelPreset[] = [
  {
    label: "CodeLlama 7B Q4_K_M",
    url: "https://huggingface.co/TheBloke/CodeLlama-7B-GGUF/resolve/main/codellama-7b.Q4_K_M.gguf",
    sizeBytes: 4_080_000_000,
    kind: "base",
    layers: 32,
    kvDim: 4096,
  },
  {
    label: "CodeLlama 7B Instruct Q4_K_M",
    url: "https://huggingface.co/TheBloke/CodeLlama-7B-Instruct-GGUF/resolve/main/codellama-7b-instruct.Q4_K_M.gguf",
    sizeBytes: 4_080_000_000,
    kind: "instruct",
    layers: 32,
    kvDim: 4096,
  },
  {
    label: "CodeLlama 13B Q4_K_M",
    url: "https://huggingface.co/TheBloke/CodeLlama-13B-GGUF/resolve/main/codellama-13b.Q4_K_M.gguf",
    sizeBytes: 7_870_000_000,
    kind: "base",
    layers: 40,
    kvDim: 5120,
  },
  {
    label: "CodeLlama 13B Instruct Q4_K_M",
    url: "https://huggingface.co/TheBloke/CodeLlama-13B-Instruct-GGUF/resolve/main/codellama-13b-instruct.Q4_K_M.gguf",
    sizeBytes: 7_870_000_000,
    kind: "instruct",
    layers: 40,
    kvDim: 5120,
  },
];

/** The file a preset downloads to, in `folder`: its URL's last segment, kept to safe characters. */
export function presetFileName(preset: ModelPreset): string {
  const last = decodeURIComponent(new URL(preset.url).pathname.split("/").pop() ?? "");
  const safe = last.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "");
  return safe.toLowerCase().endsWith(".gguf") ? safe : `${safe || "model"}.gguf`;
}

/**
 * The built-in presets followed by those of the setting (pyramidCoder.download.presets), each checked; the ones that
 * fail are reported (by position and reason) and left out, so one bad entry does not hide the others.
 */
export function parsePresets(raw: unknown): { presets: ModelPreset[]; problems: string[] } {
  const presets: ModelPreset[] = [...DEFAULT_PRESETS];
  if (raw === undefined || raw === null) return { presets, problems: [] };
  if (!Array.isArray(raw)) return { presets, problems: ["pyramidCoder.download.presets must be a list"] };
  const problems: string[] = [];
  raw.forEach((entry, index) => {
    const problem = presetProblem(entry);
    if (problem) problems.push(`preset ${index + 1}: ${problem}`);
    else presets.push(entry as ModelPreset);
  });
  return { presets, problems };
}

function presetProblem(entry: unknown): string | undefined {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return "must be an object";
  const preset = entry as Record<string, unknown>;
  if (typeof preset.label !== "string" || preset.label.trim() === "") return "label must be a non-empty string";
  if (typeof preset.url !== "string") return "url must be a string";
  let url: URL;
  try {
    url = new URL(preset.url);
  } catch {
    return `url ${JSON.stringify(preset.url)} is not a URL`;
  }
  if (url.protocol !== "https:") return `url must be https (models are fetched only over https), not ${url.protocol}`;
  if (preset.sha256 !== undefined && !(typeof preset.sha256 === "string" && /^[0-9a-f]{64}$/i.test(preset.sha256))) {
    return "sha256 must be 64 hexadecimal digits";
  }
  for (const key of ["sizeBytes", "layers", "kvDim"]) {
    const value = preset[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) return `${key} must be a positive whole number`;
  }
  if (preset.kind !== "base" && preset.kind !== "instruct") return 'kind must be "base" or "instruct"';
  return undefined;
}

/** What the engine's plan says the KV cache of a full prompt costs (bytes with the policy, and with none). */
export interface KvEstimate {
  policy: string;
  bytes: number;
  fullBytes: number;
}

/** A preset as the download list shows it: size, what it is for, and the memory it needs at `contextSize`. */
export function presetChoice(preset: ModelPreset, contextSize: number, kv: KvEstimate | undefined): { label: string; description: string; detail: string } {
  const use = preset.kind === "instruct" ? "completion and Explain Selection" : "completion";
  return { label: preset.label, description: `${formatBytes(preset.sizeBytes)} download · ${use}`, detail: memoryDetail(preset, contextSize, kv) };
}

function memoryDetail(preset: ModelPreset, contextSize: number, kv: KvEstimate | undefined): string {
  const weights = formatBytes(preset.sizeBytes);
  if (!kv) return `Needs ${weights} for the weights, plus a KV cache that could not be estimated`;
  const kvBytes = Math.min(kv.bytes, kv.fullBytes);
  const kvText = kvBytes < kv.fullBytes ? `KV ${formatBytes(kv.bytes)} with ${kv.policy} (${formatBytes(kv.fullBytes)} full)` : `KV ${formatBytes(kv.fullBytes)}`;
  // The total first: a list entry's detail is cut at the window's width.
  return `Needs ≈ ${formatBytes(preset.sizeBytes + kvBytes)} at ${formatCount(contextSize)} tokens of context: weights ${weights} + ${kvText}`;
}
