// Numbers as the status bar, the status panel and the model list show them.

/** 1536 -> "1.5 KiB"; binary units, as memory is counted. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** 12345 -> "12,345". */
export function formatCount(count: number): string {
  return Math.round(count).toLocaleString("en-US");
}

/** 1 -> "1 token", 1024 -> "1,024 tokens". */
export function formatTokens(count: number): string {
  return `${formatCount(count)} ${Math.round(count) === 1 ? "token" : "tokens"}`;
}

/** 0.4567 -> "46%". */
export function formatShare(share: number): string {
  return `${Math.round(share * 100)}%`;
}

/** 850 -> "850 ms", 12500 -> "12.5 s". */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** Tokens per second with one decimal; "–" when nothing was timed. */
export function formatRate(tokens: number, ms: number): string {
  return ms > 0 && tokens > 0 ? `${((tokens * 1000) / ms).toFixed(1)} tok/s` : "–";
}
