// Installs code-server for the end-to-end tests once (CI runs this before `npm test`, so the several-minute build
// is not charged to a test's timeout): npx vite-node test/e2e/install.ts
import { CODE_SERVER_VERSION, e2eCacheDir, ensureCodeServer, isCodeServerInstalled } from "./code-server";

const started = Date.now();
const fresh = !isCodeServerInstalled();
const entry = await ensureCodeServer((line) => console.log(`[e2e] ${line}`));
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`[e2e] code-server ${CODE_SERVER_VERSION} ${fresh ? `installed in ${seconds} s` : "already installed"}: ${entry} (cache ${e2eCacheDir()})`);
