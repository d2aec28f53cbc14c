// Downloads one large file (a multi-gigabyte GGUF model) over HTTPS: resumable, verified by SHA-256, cancellable,
// with throttled progress. The editor's "Download Model" command is a thin adapter over `downloadFile`.
//
// While a download is unfinished, `<destination>.partial` holds the bytes so far and `<destination>.partial.json`
// says what they are the start of (URL, the server's validator, the expected digest, the size). The destination only
// ever appears whole and verified, by a rename, so a model path never points at a truncated or corrupt file.

import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream, promises as fsp, type WriteStream } from "node:fs";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import https from "node:https";
import path from "node:path";
import { pipeline } from "node:stream/promises";

import { formatBytes, formatDuration } from "./format";

export interface DownloadProgress {
  /** Bytes of the file held so far, the resumed ones included. */
  received: number;
  total: number | undefined;
  resumedFrom: number;
  /** Over the last few seconds of this attempt. */
  bytesPerSecond: number;
}

export interface DownloadOptions {
  /** Only https:; any other scheme, or a redirect to one, is refused ("insecure"). */
  url: string;
  /** Created only once the whole file arrived and its SHA-256 matched. */
  destination: string;
  /** Expected hex digest; when absent, the `X-Linked-Etag` that Hugging Face sends for LFS files. */
  sha256?: string;
  /** Aborting keeps the partial file for a later resume. */
  signal?: AbortSignal;
  /** At most ~10 calls a second, plus one when all bytes arrived. */
  onProgress?: (progress: DownloadProgress) => void;
  /** An extra trusted certificate authority (PEM). */
  ca?: string | Buffer;
  /** Default 5. */
  maxRedirects?: number;
  headers?: Record<string, string>;
  /** Give up ("network") when the connection is silent this long; default 60 s. */
  stallTimeoutMs?: number;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  resumedFrom: number;
}

export type DownloadErrorCode = "insecure" | "http" | "network" | "checksum" | "no-checksum" | "cancelled" | "disk" | "size";

/** A failed download, with a message the user can read as it is. */
export class DownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "DownloadError";
  }
}

const DEFAULT_MAX_REDIRECTS = 5;
const DEFAULT_STALL_TIMEOUT_MS = 60_000;
const PROGRESS_INTERVAL_MS = 100;
// Long enough to smooth TCP's bursts, short enough that the estimate follows a change of network.
const RATE_WINDOW_MS = 5_000;
// Leaves room for the sidecar and the file system's own bookkeeping: a download never fills a disk to the last block.
const FREE_SPACE_MARGIN_BYTES = 64 * 2 ** 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const SHA256_HEX = /^[0-9a-f]{64}$/i;
// OpenSSL's and Node's names for a certificate that could not be verified.
const CERTIFICATE_ERROR_CODE = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/;
const unknownHost = (error: NodeJS.ErrnoException & { hostname?: string }): string =>
  `${error.hostname ?? "the server"} could not be found (is this computer offline?)`;
const NETWORK_FAILURES: Record<string, (error: NodeJS.ErrnoException & { hostname?: string }) => string> = {
  ECONNRESET: () => "the connection was interrupted",
  ECONNREFUSED: () => "the server refused the connection",
  ETIMEDOUT: () => "the connection timed out",
  ENOTFOUND: unknownHost,
  EAI_AGAIN: unknownHost,
};
// Credentials meant for the first host (a token for a gated model) must not reach the CDN it redirects to.
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie"]);

/** What `<destination>.partial.json` holds. */
interface PartialRecord {
  url: string;
  /** The response's strong ETag, else its Last-Modified: what If-Range needs to resume only the same file. */
  validator: string | null;
  sha256: string;
  total: number | null;
}

interface Resumable {
  record: PartialRecord;
  size: number;
  /** Digest state after the partial file's bytes. */
  hash: Hash;
}

interface Job {
  options: DownloadOptions;
  /** The destination's file name, as messages call the download. */
  name: string;
  partialPath: string;
  sidecarPath: string;
  wantedSha256: string | undefined;
}

export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const name = path.basename(options.destination);
  requireHttps(options.url, name, options.url);
  if (options.sha256 !== undefined && !SHA256_HEX.test(options.sha256)) {
    throw new DownloadError(
      "checksum",
      `Cannot download ${name}: its expected checksum "${options.sha256}" is not a SHA-256 digest (64 hexadecimal digits).`,
    );
  }
  const job: Job = {
    options,
    name,
    partialPath: `${options.destination}.partial`,
    sidecarPath: `${options.destination}.partial.json`,
    wantedSha256: options.sha256?.toLowerCase(),
  };
  try {
    throwIfCancelled(options.signal);
    let resumable = await findResumable(job);
    for (;;) {
      const result = await attempt(job, resumable);
      if (result !== "start-over") return result;
      resumable = undefined;
    }
  } catch (error) {
    throw await explain(job, error);
  }
}

/** One request (with its redirects) and what its answer leads to; "start-over" when the partial cannot be continued. */
async function attempt(job: Job, resumable: Resumable | undefined): Promise<DownloadResult | "start-over"> {
  const { options } = job;
  const headers: Record<string, string> = {
    ...options.headers,
    // Byte ranges and Content-Length must count the file's own bytes, not a compressed encoding of them.
    "Accept-Encoding": "identity",
  };
  if (resumable) {
    headers.Range = `bytes=${resumable.size}-`;
    if (resumable.record.validator !== null) headers["If-Range"] = resumable.record.validator;
  }
  const { response, url, linkedSha256 } = await getFollowingRedirects(job, headers);
  try {
    const status = response.statusCode ?? 0;
    const expectedSha256 = job.wantedSha256 ?? linkedSha256 ?? resumable?.record.sha256;
    let offset: number;
    let total: number | undefined;
    if (resumable && (status === 206 || status === 416)) {
      // The partial is another file's start when the digest now expected is not the one it was downloaded for.
      if (expectedSha256 !== resumable.record.sha256) return "start-over";
      if (status === 416) {
        const fileSize = parseUnsatisfiedRange(response.headers) ?? resumable.record.total;
        if (fileSize !== resumable.size) return "start-over";
        new ProgressMeter(options.onProgress, fileSize, resumable.size).final(resumable.size);
        return await verifyAndMoveIntoPlace(job, resumable.hash, resumable.size, resumable.size, expectedSha256);
      }
      const range = parseContentRange(response.headers);
      if (range?.start !== resumable.size) return "start-over";
      offset = resumable.size;
      total = range.total;
    } else if (status === 200) {
      offset = 0;
      total = parseContentLength(response.headers);
    } else {
      throw new DownloadError(
        "http",
        `The download of ${job.name} failed: the server answered ${status} ${response.statusMessage ?? ""}`.trimEnd() +
          ` for ${displayUrl(url)}.`,
      );
    }

    if (expectedSha256 === undefined) {
      throw new DownloadError(
        "no-checksum",
        `Cannot download ${job.name}: no SHA-256 was given and the server sent none (no X-Linked-Etag header), ` +
          "so the file could not be verified; nothing was downloaded.",
      );
    }
    const folder = path.dirname(options.destination);
    await fsp.mkdir(folder, { recursive: true });
    if (total !== undefined) await requireFreeSpace(folder, total - offset, job.name);

    let hash: Hash;
    if (offset > 0 && resumable) {
      hash = resumable.hash;
    } else {
      hash = createHash("sha256");
      // Gone before the new record exists, so a crash in between never pairs old bytes with the new file's record.
      await fsp.rm(job.partialPath, { force: true });
    }
    const record: PartialRecord = {
      url: options.url,
      validator: validatorOf(response.headers),
      sha256: expectedSha256,
      total: total ?? null,
    };
    await fsp.writeFile(job.sidecarPath, JSON.stringify(record));

    const progress = new ProgressMeter(options.onProgress, total, offset);
    const received = await receiveBody(job, response, offset, hash, progress);
    progress.final(received);
    if (total !== undefined && received !== total) {
      await discardPartial(job);
      throw new DownloadError(
        "size",
        `The download of ${job.name} is incomplete or too long: ${received} bytes arrived where the server announced ` +
          `${total}; the partial download was deleted.`,
      );
    }
    return await verifyAndMoveIntoPlace(job, hash, received, offset, expectedSha256);
  } finally {
    response.destroy();
  }
}

/**
 * Appends the response's body to the partial file from `offset`, hashing it on the way; returns the partial's new size.
 * When the connection breaks, the bytes already read from the response are still written out before the error is
 * thrown, so the next attempt resumes from them (Node drops the few kilobytes still buffered inside the response).
 */
async function receiveBody(
  job: Job,
  response: IncomingMessage,
  offset: number,
  hash: Hash,
  progress: ProgressMeter,
): Promise<number> {
  let received = offset;
  let interruption: unknown;
  async function* bodyUntilInterrupted(): AsyncGenerator<Buffer> {
    const chunks = response[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (error) {
        interruption = error;
        return;
      }
      if (next.done) return;
      hash.update(next.value);
      received += next.value.length;
      progress.update(received);
      yield next.value;
    }
  }
  const file = createWriteStream(job.partialPath, offset > 0 ? { flags: "r+", start: offset } : { flags: "w" });
  try {
    await pipeline(bodyUntilInterrupted, file);
  } finally {
    await closed(file);
  }
  if (interruption !== undefined) throw interruption;
  return received;
}

/** Checks the digest, then moves the partial file into place. */
async function verifyAndMoveIntoPlace(
  job: Job,
  hash: Hash,
  bytes: number,
  resumedFrom: number,
  expectedSha256: string,
): Promise<DownloadResult> {
  const sha256 = hash.digest("hex");
  if (sha256 !== expectedSha256) {
    await discardPartial(job);
    throw new DownloadError(
      "checksum",
      `The download of ${job.name} is corrupt or not the expected file: its SHA-256 is ${sha256}, expected ` +
        `${expectedSha256}. The partial download was deleted.`,
    );
  }
  await fsp.rename(job.partialPath, job.options.destination);
  await fsp.rm(job.sidecarPath, { force: true });
  return { path: job.options.destination, bytes, sha256, resumedFrom };
}

async function discardPartial(job: Job): Promise<void> {
  await fsp.rm(job.partialPath, { force: true });
  await fsp.rm(job.sidecarPath, { force: true });
}

/** The partial file and its record, when they are the start of this URL's file; their bytes already hashed. */
async function findResumable(job: Job): Promise<Resumable | undefined> {
  let record: unknown;
  try {
    record = JSON.parse(await fsp.readFile(job.sidecarPath, "utf8"));
  } catch {
    return undefined;
  }
  const size = await fsp.stat(job.partialPath).then(
    (stats) => stats.size,
    () => 0,
  );
  if (!isPartialRecord(record) || record.url !== job.options.url || size === 0) return undefined;
  if (job.wantedSha256 !== undefined && record.sha256 !== job.wantedSha256) return undefined;
  if (record.total !== null && size > record.total) return undefined;
  // Hashed before the request rather than while its response waits: on a slow disk, reading gigabytes back would
  // outlast the stall timeout.
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(job.partialPath, { end: size - 1 })) {
    throwIfCancelled(job.options.signal);
    hash.update(chunk as Buffer);
  }
  return { record, size, hash };
}

function isPartialRecord(value: unknown): value is PartialRecord {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.url === "string" &&
    (record.validator === null || typeof record.validator === "string") &&
    typeof record.sha256 === "string" &&
    SHA256_HEX.test(record.sha256) &&
    (record.total === null || (typeof record.total === "number" && Number.isSafeInteger(record.total)))
  );
}

interface Fetched {
  response: IncomingMessage;
  /** The URL that answered, after redirects. */
  url: string;
  linkedSha256: string | undefined;
}

async function getFollowingRedirects(job: Job, headers: Record<string, string>): Promise<Fetched> {
  const maxRedirects = job.options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const origin = new URL(job.options.url).origin;
  let url = job.options.url;
  let linkedSha256: string | undefined;
  for (let redirects = 0; ; redirects++) {
    const sameOrigin = new URL(url).origin === origin;
    const hopHeaders = sameOrigin
      ? headers
      : Object.fromEntries(Object.entries(headers).filter(([header]) => !CREDENTIAL_HEADERS.has(header.toLowerCase())));
    const response = await get(url, hopHeaders, job.options);
    linkedSha256 ??= parseLinkedEtag(response.headers);
    if (!REDIRECT_STATUSES.has(response.statusCode ?? 0)) return { response, url, linkedSha256 };
    response.destroy();
    const location = response.headers.location;
    if (location === undefined) {
      throw new DownloadError("http", `The download of ${job.name} failed: ${displayUrl(url)} redirected to no address.`);
    }
    if (redirects === maxRedirects) {
      throw new DownloadError(
        "http",
        `The download of ${job.name} failed: ${displayUrl(job.options.url)} redirected more than ${maxRedirects} times.`,
      );
    }
    const target = resolveUrl(location, url, job.name);
    requireHttps(target, job.name, job.options.url);
    url = target;
  }
}

function get(url: string, headers: Record<string, string>, options: DownloadOptions): Promise<IncomingMessage> {
  const stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let response: IncomingMessage | undefined;
    // A connection of its own (agent: false), so that the idle timeout set here never stays on a pooled socket that
    // some later request reuses.
    const request = https.request(url, { headers, ca: options.ca, signal: options.signal, agent: false }, (answer) => {
      response = answer;
      resolve(answer);
    });
    request.setTimeout(stallTimeoutMs, () => {
      const error = new Error(`the server sent nothing for ${formatDuration(stallTimeoutMs)}`);
      // The response first: destroying only the request would reach the body's reader as a bare "aborted".
      response?.destroy(error);
      request.destroy(error);
    });
    request.on("error", reject);
    request.end();
  });
}

/** Turns whatever stopped the download into a DownloadError whose message says what happened to the bytes so far. */
async function explain(job: Job, error: unknown): Promise<DownloadError> {
  if (error instanceof DownloadError) return error;
  const kept = await fsp.stat(job.partialPath).then(
    (stats) => stats.size,
    () => 0,
  );
  const reuse = kept > 0 ? ` The ${formatBytes(kept)} downloaded so far will be reused next time.` : "";
  if (job.options.signal?.aborted) {
    return new DownloadError(
      "cancelled",
      kept > 0
        ? `The download of ${job.name} was cancelled; ${formatBytes(kept)} downloaded so far will be reused next time.`
        : `The download of ${job.name} was cancelled.`,
    );
  }
  const failure: NodeJS.ErrnoException = error instanceof Error ? error : new Error(String(error));
  const code = typeof failure.code === "string" ? failure.code : "";
  if (CERTIFICATE_ERROR_CODE.test(code)) {
    return new DownloadError(
      "insecure",
      `The download of ${job.name} was refused: the server's certificate could not be verified (${failure.message}).`,
    );
  }
  // File system errors name the path they failed on; socket errors do not.
  if (typeof failure.path === "string") {
    return new DownloadError("disk", `The download of ${job.name} could not be written: ${failure.message}.${reuse}`);
  }
  const reason = NETWORK_FAILURES[code]?.(failure) ?? failure.message;
  return new DownloadError("network", `The download of ${job.name} failed: ${reason}.${reuse}`);
}

async function requireFreeSpace(folder: string, neededBytes: number, name: string): Promise<void> {
  const stats = await fsp.statfs(folder);
  const free = stats.bavail * stats.bsize;
  if (free < neededBytes + FREE_SPACE_MARGIN_BYTES) {
    throw new DownloadError(
      "disk",
      `Not enough free disk space to download ${name}: it needs ${formatBytes(neededBytes)} more, and ${folder} has ` +
        `${formatBytes(free)} free.`,
    );
  }
}

/** Progress for `onProgress`: at most one call per PROGRESS_INTERVAL_MS, the rate over the last RATE_WINDOW_MS. */
class ProgressMeter {
  private lastReportAt = -Infinity;
  private readonly samples: { at: number; received: number }[];

  constructor(
    private readonly onProgress: ((progress: DownloadProgress) => void) | undefined,
    private readonly total: number | undefined,
    private readonly resumedFrom: number,
  ) {
    this.samples = [{ at: performance.now(), received: resumedFrom }];
  }

  update(received: number): void {
    const now = performance.now();
    if (now - this.lastReportAt < PROGRESS_INTERVAL_MS) return;
    this.report(received, now);
  }

  final(received: number): void {
    this.report(received, performance.now());
  }

  private report(received: number, now: number): void {
    if (!this.onProgress) return;
    this.lastReportAt = now;
    while (this.samples.length > 1 && now - this.samples[1].at >= RATE_WINDOW_MS) this.samples.shift();
    const oldest = this.samples[0];
    const seconds = (now - oldest.at) / 1000;
    const bytesPerSecond = seconds > 0 ? (received - oldest.received) / seconds : 0;
    this.samples.push({ at: now, received });
    this.onProgress({ received, total: this.total, resumedFrom: this.resumedFrom, bytesPerSecond });
  }
}

function requireHttps(url: string, name: string, requested: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new DownloadError("insecure", `Cannot download ${name}: "${url}" is not a valid URL.`);
  }
  if (protocol === "https:") return;
  throw new DownloadError(
    "insecure",
    url === requested
      ? `Cannot download ${name}: only https addresses are allowed, not ${displayUrl(url)}.`
      : `The download of ${name} was refused: ${displayUrl(requested)} redirected to ${displayUrl(url)}, which is not https.`,
  );
}

function resolveUrl(location: string, base: string, name: string): string {
  try {
    return new URL(location, base).href;
  } catch {
    throw new DownloadError("http", `The download of ${name} failed: ${displayUrl(base)} redirected to an invalid address.`);
  }
}

function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error("cancelled");
}

/** Hugging Face's `X-Linked-Etag`: the LFS object's SHA-256, quoted (for non-LFS files it is a git SHA-1: ignored). */
function parseLinkedEtag(headers: IncomingHttpHeaders): string | undefined {
  const value = headers["x-linked-etag"];
  if (typeof value !== "string") return undefined;
  const digest = value.replace(/^W\//, "").replace(/^"|"$/g, "");
  return SHA256_HEX.test(digest) ? digest.toLowerCase() : undefined;
}

function validatorOf(headers: IncomingHttpHeaders): string | null {
  // If-Range takes only a strong ETag.
  const etag = headers.etag;
  if (etag !== undefined && !etag.startsWith("W/")) return etag;
  return headers["last-modified"] ?? null;
}

function parseContentLength(headers: IncomingHttpHeaders): number | undefined {
  const value = headers["content-length"];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** `Content-Range: bytes <start>-<end>/<total or *>`. */
function parseContentRange(headers: IncomingHttpHeaders): { start: number; total: number | undefined } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers["content-range"] ?? "");
  if (!match) return undefined;
  return { start: Number(match[1]), total: match[3] === "*" ? undefined : Number(match[3]) };
}

/** A 416's `Content-Range: bytes *\/<total>`. */
function parseUnsatisfiedRange(headers: IncomingHttpHeaders): number | undefined {
  const match = /^bytes \*\/(\d+)$/.exec(headers["content-range"] ?? "");
  return match ? Number(match[1]) : undefined;
}

/** Without its query, which for a CDN is a long signature nobody needs to read. */
function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return url;
  }
}

function closed(file: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (file.closed) resolve();
    else file.once("close", () => resolve());
  });
}
