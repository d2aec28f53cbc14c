// Builds the engine's native test executables with AddressSanitizer and UndefinedBehaviorSanitizer, once per
// vitest run (incremental), so the engine tests and the GGUF fuzz driver always run instrumented.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

import { SANITIZE_BUILD_DIR } from "./native-tests";

export default function setup(): void {
  const root = path.resolve(__dirname, "../..");
  if (!existsSync(path.join(SANITIZE_BUILD_DIR, "CMakeCache.txt"))) {
    execFileSync(
      "cmake",
      ["-S", root, "-B", SANITIZE_BUILD_DIR, "-DPC_BUILD_TESTS=ON", "-DPC_SANITIZE=ON", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
      { stdio: "inherit" },
    );
  }
  execFileSync("cmake", ["--build", SANITIZE_BUILD_DIR, "--parallel", "2"], { stdio: "inherit" });
}
