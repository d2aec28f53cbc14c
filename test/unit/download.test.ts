// The model download against a real local HTTPS server: progress, resume after a cut connection (and a server that
// ignores the range), checksums given or taken from Hugging Face's X-Linked-Etag, cancellation and its resume,
// refusal of plain http, missing checksums, HTTP errors, stalls, free space and untrusted certificates.
import { createHash, randomBytes, randomInt } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  promises as fsp,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

import { DownloadError, type DownloadOptions, type DownloadProgress, downloadFile } from "../../extension/core/download";

const TLS_DIR = path.resolve(__dirname, "../support/tls");
const CERT = readFileSync(path.join(TLS_DIR, "cert.pem"));
const KEY = readFileSync(path.join(TLS_DIR, "key.pem"));

const DATA = randomBytes(3_000_000 + randomInt(2_000_000));
const SHA256 = createHash("sha256").update(DATA).digest("hex");
const WRONG_SHA256 = createHash("sha256").update("another file").digest("hex");
const ETAG = `"${SHA256.slice(0, 16)}"`;
const CUT = 1_234_567;
const DRIP_CHUNK = 64 * 1024;
// When a connection breaks, Node drops what the response still buffered: the partial file ends up to this much short of
// what the server sent.
const RESPONSE_BUFFER_SLACK = 64 * 1024;

interface SeenRequest {
  path: string;
  tag: string | null;
  range: string | undefined;
  ifRange: string | undefined;
}

const seen: SeenRequest[] = [];
let server: https.Server;
let origin: string;

/**
 * `/file` serves DATA with an ETag and byte ranges; its query shapes the answer: `cut=N` destroys the connection after
 * N bytes of a request without a Range, `ignoreRange` answers 200 to everything, `delayMs=D` drips 64 KiB every D ms,
 * `stallAfter=N` sends N bytes and then nothing. `/hf/good` and `/hf/wrong` redirect there as Hugging Face does, with
 * the right or a wrong X-Linked-Etag; `/http-redirect` redirects to plain http.
 */
function handle(request: IncomingMessage, response: ServerResponse): void {
  const url = new URL(request.url ?? "/", origin);
  seen.push({
    path: url.pathname,
    tag: url.searchParams.get("tag"),
    range: request.headers.range,
    ifRange: headerValue(request, "if-range"),
  });
  const linkedRedirect = (sha256: string): void => {
    response.writeHead(302, { Location: `/file${url.search}`, "X-Linked-Etag": `"${sha256}"`, ETag: `"${sha256}"` });
    response.end();
  };
  switch (url.pathname) {
    case "/file":
      return serveFile(request, response, url.searchParams);
    case "/hf/good":
      return linkedRedirect(SHA256);
    case "/hf/wrong":
      return linkedRedirect(WRONG_SHA256);
    case "/http-redirect":
      response.writeHead(302, { Location: `http://127.0.0.1:${(server.address() as AddressInfo).port}/file` });
      return void response.end();
    default:
      response.writeHead(404);
      return void response.end("not found");
  }
}

function serveFile(request: IncomingMessage, response: ServerResponse, params: URLSearchParams): void {
  const numberParam = (name: string): number | undefined => (params.has(name) ? Number(params.get(name)) : undefined);
  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
  const honourRange = range !== null && !params.has("ignoreRange") && (headerValue(request, "if-range") ?? ETAG) === ETAG;
  const start = honourRange ? Number(range[1]) : 0;
  if (start >= DATA.length) {
    response.writeHead(416, { "Content-Range": `bytes */${DATA.length}` });
    return void response.end();
  }
  const body = DATA.subarray(start);
  const headers = { ETag: ETAG, "Accept-Ranges": "bytes", "Content-Length": String(body.length) };
  if (honourRange) response.writeHead(206, { ...headers, "Content-Range": `bytes ${start}-${DATA.length - 1}/${DATA.length}` });
  else response.writeHead(200, headers);

  const cut = request.headers.range === undefined ? numberParam("cut") : undefined;
  const stallAfter = numberParam("stallAfter");
  const delayMs = numberParam("delayMs");
  if (cut !== undefined) {
    response.write(body.subarray(0, cut), () => response.socket?.destroy());
  } else if (stallAfter !== undefined) {
    response.write(body.subarray(0, stallAfter));
  } else if (delayMs !== undefined) {
    let position = 0;
    const timer = setInterval(() => {
      const chunk = body.subarray(position, position + DRIP_CHUNK);
      position += chunk.length;
      if (position < body.length) response.write(chunk);
      else {
        clearInterval(timer);
        response.end(chunk);
      }
    }, delayMs);
    response.on("close", () => clearInterval(timer));
  } else {
    response.end(body);
  }
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === "string" ? value : undefined;
}

function urlOf(pathname: string, params: Record<string, string | number | boolean>): string {
  const query = new URLSearchParams(Object.entries(params).map(([key, value]): [string, string] => [key, String(value)]));
  return `${origin}${pathname}?${query}`;
}

function requestsTagged(tag: string): SeenRequest[] {
  return seen.filter((request) => request.tag === tag);
}

async function downloadError(options: DownloadOptions): Promise<DownloadError> {
  const error = await downloadFile(options).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(DownloadError);
  return error as DownloadError;
}

beforeAll(async () => {
  server = https.createServer({ cert: CERT, key: KEY }, handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("downloadFile", () => {
  let folder: string;
  let destination: string;
  let partial: string;
  let sidecar: string;

  beforeEach(() => {
    folder = mkdtempSync(path.join(os.tmpdir(), "pc-download-"));
    destination = path.join(folder, "models", "model.gguf");
    partial = `${destination}.partial`;
    sidecar = `${destination}.partial.json`;
  });

  afterEach(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  it("downloads into a new folder, verified by Hugging Face's X-Linked-Etag, reporting progress", async () => {
    const progress: DownloadProgress[] = [];
    const result = await downloadFile({
      url: urlOf("/hf/good", { tag: "progress", delayMs: 10 }),
      destination,
      ca: CERT,
      onProgress: (update) => progress.push(update),
    });

    expect(result).toEqual({ path: destination, bytes: DATA.length, sha256: SHA256, resumedFrom: 0 });
    expect(readFileSync(destination).equals(DATA)).toBe(true);
    expect(existsSync(partial) || existsSync(sidecar)).toBe(false);

    const received = progress.map((update) => update.received);
    expect(new Set(received).size).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < received.length; i++) expect(received[i]).toBeGreaterThanOrEqual(received[i - 1]);
    expect(received.at(-1)).toBe(DATA.length);
    expect(progress.every((update) => update.total === DATA.length && update.resumedFrom === 0)).toBe(true);
    expect(progress.at(-1)!.bytesPerSecond).toBeGreaterThan(0);
  });

  it("resumes after a cut connection with a Range request, to the same bytes", async () => {
    const url = urlOf("/file", { tag: "resume", cut: CUT });
    const cut = await downloadError({ url, destination, sha256: SHA256, ca: CERT });
    expect(cut.code).toBe("network");
    expect(cut.message).toMatch(/interrupted.*reused next time/);
    const kept = statSync(partial).size;
    expect(kept).toBeLessThanOrEqual(CUT);
    expect(kept).toBeGreaterThan(CUT - RESPONSE_BUFFER_SLACK);
    expect(existsSync(sidecar)).toBe(true);
    expect(existsSync(destination)).toBe(false);

    const result = await downloadFile({ url, destination, sha256: SHA256.toUpperCase(), ca: CERT });
    expect(requestsTagged("resume").map(({ range, ifRange }) => ({ range, ifRange }))).toEqual([
      { range: undefined, ifRange: undefined },
      { range: `bytes=${kept}-`, ifRange: ETAG },
    ]);
    expect(result.resumedFrom).toBe(kept);
    expect(result.bytes).toBe(DATA.length);
    expect(readFileSync(destination).equals(DATA)).toBe(true);
    expect(existsSync(partial) || existsSync(sidecar)).toBe(false);
  });

  it("starts over when the server answers a resume with the whole file", async () => {
    const url = urlOf("/file", { tag: "ignore-range", cut: CUT, ignoreRange: true });
    expect((await downloadError({ url, destination, sha256: SHA256, ca: CERT })).code).toBe("network");
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThan(CUT - RESPONSE_BUFFER_SLACK);

    const result = await downloadFile({ url, destination, sha256: SHA256, ca: CERT });
    expect(requestsTagged("ignore-range").at(-1)!.range).toBe(`bytes=${kept}-`);
    expect(result.resumedFrom).toBe(0);
    expect(readFileSync(destination).equals(DATA)).toBe(true);
  });

  it("verifies a partial file that is already whole when the server answers 416", async () => {
    const url = urlOf("/file", { tag: "complete" });
    mkdirSync(path.dirname(destination));
    writeFileSync(partial, DATA);
    writeFileSync(sidecar, JSON.stringify({ url, validator: ETAG, sha256: SHA256, total: DATA.length }));

    const progress: DownloadProgress[] = [];
    const result = await downloadFile({ url, destination, ca: CERT, onProgress: (update) => progress.push(update) });
    expect(requestsTagged("complete").map((request) => request.range)).toEqual([`bytes=${DATA.length}-`]);
    expect(result).toEqual({ path: destination, bytes: DATA.length, sha256: SHA256, resumedFrom: DATA.length });
    expect(progress.at(-1)!.received).toBe(DATA.length);
    expect(readFileSync(destination).equals(DATA)).toBe(true);
  });

  it("starts over when the partial file's record is for another URL", async () => {
    const url = urlOf("/file", { tag: "other-record" });
    mkdirSync(path.dirname(destination));
    writeFileSync(partial, randomBytes(CUT));
    writeFileSync(sidecar, JSON.stringify({ url: `${url}&v=2`, validator: ETAG, sha256: SHA256, total: DATA.length }));

    const result = await downloadFile({ url, destination, sha256: SHA256, ca: CERT });
    expect(requestsTagged("other-record").map((request) => request.range)).toEqual([undefined]);
    expect(result.resumedFrom).toBe(0);
    expect(readFileSync(destination).equals(DATA)).toBe(true);
  });

  it.each([
    ["a given SHA-256", "/file", WRONG_SHA256],
    ["an X-Linked-Etag", "/hf/wrong", undefined],
  ])("rejects a file that does not match %s, deleting it", async (_source, pathname, sha256) => {
    const error = await downloadError({ url: urlOf(pathname, { tag: "wrong" }), sha256, destination, ca: CERT });
    expect(error.code).toBe("checksum");
    expect(error.message).toContain(SHA256);
    expect(error.message).toContain(WRONG_SHA256);
    expect(existsSync(destination) || existsSync(partial) || existsSync(sidecar)).toBe(false);
  });

  it("keeps the partial file of a cancelled download and resumes from it", async () => {
    const url = urlOf("/file", { tag: "cancel", delayMs: 5 });
    const controller = new AbortController();
    const error = await downloadError({
      url,
      destination,
      sha256: SHA256,
      ca: CERT,
      signal: controller.signal,
      onProgress: ({ received }) => {
        if (received >= 2 * DRIP_CHUNK) controller.abort();
      },
    });
    expect(error.code).toBe("cancelled");
    expect(error.message).toMatch(/cancelled; .* MiB downloaded so far will be reused next time/);
    expect(existsSync(destination)).toBe(false);
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThanOrEqual(2 * DRIP_CHUNK);
    expect(kept).toBeLessThan(DATA.length);

    const result = await downloadFile({ url, destination, sha256: SHA256, ca: CERT });
    expect(requestsTagged("cancel").at(-1)!.range).toBe(`bytes=${kept}-`);
    expect(result.resumedFrom).toBe(kept);
    expect(readFileSync(destination).equals(DATA)).toBe(true);
  });

  it("refuses plain http, given or redirected to, writing nothing", async () => {
    const plain = await downloadError({ url: `http://127.0.0.1:1/file`, destination, sha256: SHA256, ca: CERT });
    expect(plain.code).toBe("insecure");

    const redirected = await downloadError({ url: urlOf("/http-redirect", { tag: "http" }), destination, sha256: SHA256, ca: CERT });
    expect(redirected.code).toBe("insecure");
    expect(redirected.message).toContain("not https");
    expect(requestsTagged("http")).toHaveLength(1);
    expect(readdirSync(folder)).toEqual([]);
  });

  it("refuses a server whose certificate is not trusted", async () => {
    const error = await downloadError({ url: urlOf("/file", { tag: "untrusted" }), destination, sha256: SHA256 });
    expect(error.code).toBe("insecure");
    expect(error.message).toContain("certificate");
    expect(readdirSync(folder)).toEqual([]);
  });

  it("refuses to download what it cannot verify", async () => {
    const error = await downloadError({ url: urlOf("/file", { tag: "no-checksum" }), destination, ca: CERT });
    expect(error.code).toBe("no-checksum");
    expect(readdirSync(folder)).toEqual([]);
  });

  it("reports an HTTP error with its status and URL", async () => {
    const url = urlOf("/missing", { tag: "missing" });
    const error = await downloadError({ url, destination, sha256: SHA256, ca: CERT });
    expect(error.code).toBe("http");
    expect(error.message).toContain("404");
    expect(error.message).toContain(`${origin}/missing`);
    expect(readdirSync(folder)).toEqual([]);
  });

  it("gives up on a server that stops sending, keeping what arrived", async () => {
    const url = urlOf("/file", { tag: "stall", stallAfter: CUT });
    const started = performance.now();
    const error = await downloadError({ url, destination, sha256: SHA256, ca: CERT, stallTimeoutMs: 300 });
    expect(error.code).toBe("network");
    expect(error.message).toContain("sent nothing for 300 ms");
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(statSync(partial).size).toBe(CUT);
  });

  it("refuses to start without the free disk space the file needs", async () => {
    mkdirSync(path.dirname(destination));
    const actual = await fsp.statfs(folder);
    const statfs = vi.spyOn(fsp, "statfs").mockResolvedValue({ ...actual, bavail: 1, bsize: 4096 });
    try {
      const error = await downloadError({ url: urlOf("/file", { tag: "disk" }), destination, sha256: SHA256, ca: CERT });
      expect(error.code).toBe("disk");
      expect(error.message).toMatch(/needs \d+\.\d MiB more, and .* has 4\.0 KiB free/);
      expect(statfs).toHaveBeenCalledWith(path.dirname(destination));
      expect(existsSync(partial) || existsSync(sidecar)).toBe(false);
    } finally {
      statfs.mockRestore();
    }
  });
});
