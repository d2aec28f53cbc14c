// Runs an executable of the sanitizer build (see global-setup.ts) and returns its exit status and output.
import { spawnSync } from "node:child_process";
import path from "node:path";

export const SANITIZE_BUILD_DIR = path.resolve(__dirname, "../../build-sanitize");

/** `target` is the executable's path inside the build, e.g. "engine/gguf_test". */
export function runNative(target: string, args: string[] = [], timeoutMs = 240_000) {
  const result = spawnSync(path.join(SANITIZE_BUILD_DIR, target), args, {
    encoding: "utf8",
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ASAN_OPTIONS: "abort_on_error=0:detect_leaks=1", UBSAN_OPTIONS: "print_stacktrace=1" },
  });
  return { status: result.status, signal: result.signal, output: `${result.stdout ?? ""}${result.stderr ?? ""}`, error: result.error };
}
