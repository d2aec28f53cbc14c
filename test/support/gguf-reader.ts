// A small GGUF reader for tests: parses the header into the same explicitly typed values the
// writer takes (numeric arrays come back as typed arrays, 64-bit integers as bigint) and reads
// tensor data on demand, so opening a multi-gigabyte file costs only its header.

import fs from "node:fs";
import { type GgmlTypeName, ggmlTypeById, tensorBytes } from "./ggml-types";
import {
  type GgufArray,
  type GgufScalarType,
  type GgufValue,
  type GgufValueType,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPE_IDS,
  alignUp,
} from "./gguf-writer";

export interface GgufTensorInfo {
  name: string;
  /** File offset of the name's first UTF-8 byte (after its u64 length): for tests that corrupt headers. */
  nameOffset: number;
  /** File offset of the u32 ggml type field. */
  typeFieldOffset: number;
  dims: number[];
  typeId: number;
  /** Undefined for a ggml type outside our supported set. */
  type: GgmlTypeName | undefined;
  /** Offset relative to the data section, as stored. */
  offset: number;
  /** Absolute offset in the file. */
  fileOffset: number;
  /** Undefined when the type is unsupported. */
  byteLength: number | undefined;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  dataOffset: number;
  fileBytes: number;
}

const VALUE_TYPES_BY_ID = new Map<number, GgufValueType>(
  (Object.entries(GGUF_VALUE_TYPE_IDS) as Array<[GgufValueType, number]>).map(([name, id]) => [id, name]),
);

/** Reads forward through a file, buffering a window so header parsing needs few syscalls. */
class FileCursor {
  private window = Buffer.alloc(0);
  private windowStart = 0;
  position = 0;

  constructor(private readonly fd: number, private readonly fileBytes: number) {}

  /** Returns the window offset of n bytes at the cursor and advances past them. */
  private take(n: number): number {
    if (this.position + n > this.fileBytes) throw new Error(`GGUF truncated: need ${n} bytes at ${this.position}`);
    if (this.position < this.windowStart || this.position + n > this.windowStart + this.window.length) {
      this.window = Buffer.alloc(Math.max(n, 1 << 20));
      fs.readSync(this.fd, this.window, 0, Math.min(this.window.length, this.fileBytes - this.position), this.position);
      this.windowStart = this.position;
    }
    const at = this.position - this.windowStart;
    this.position += n;
    return at;
  }

  u8(): number { const at = this.take(1); return this.window.readUInt8(at); }
  i8(): number { const at = this.take(1); return this.window.readInt8(at); }
  u16(): number { const at = this.take(2); return this.window.readUInt16LE(at); }
  i16(): number { const at = this.take(2); return this.window.readInt16LE(at); }
  u32(): number { const at = this.take(4); return this.window.readUInt32LE(at); }
  i32(): number { const at = this.take(4); return this.window.readInt32LE(at); }
  f32(): number { const at = this.take(4); return this.window.readFloatLE(at); }
  f64(): number { const at = this.take(8); return this.window.readDoubleLE(at); }
  u64(): bigint { const at = this.take(8); return this.window.readBigUInt64LE(at); }
  i64(): bigint { const at = this.take(8); return this.window.readBigInt64LE(at); }
  /** A u64 count or offset, which must fit a JS number. */
  size(): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`GGUF size ${v} out of range`);
    return Number(v);
  }
  string(): string {
    const n = this.size();
    const at = this.take(n);
    return this.window.toString("utf8", at, at + n);
  }
}

function valueType(id: number): GgufValueType {
  const type = VALUE_TYPES_BY_ID.get(id);
  if (type === undefined) throw new Error(`unknown GGUF value type ${id}`);
  return type;
}

function readScalar(cursor: FileCursor, type: GgufScalarType): number | bigint | boolean | string {
  switch (type) {
    case "u8": return cursor.u8();
    case "i8": return cursor.i8();
    case "u16": return cursor.u16();
    case "i16": return cursor.i16();
    case "u32": return cursor.u32();
    case "i32": return cursor.i32();
    case "f32": return cursor.f32();
    case "f64": return cursor.f64();
    case "u64": return cursor.u64();
    case "i64": return cursor.i64();
    case "bool": {
      const b = cursor.u8();
      if (b > 1) throw new Error(`invalid GGUF bool ${b}`);
      return b === 1;
    }
    case "string": return cursor.string();
  }
}

const TYPED_ARRAYS = {
  u8: Uint8Array, i8: Int8Array, u16: Uint16Array, i16: Int16Array, u32: Uint32Array, i32: Int32Array,
  f32: Float32Array, f64: Float64Array, u64: BigUint64Array, i64: BigInt64Array,
} as const;

function readArrayBody(cursor: FileCursor): GgufArray {
  const elementType = valueType(cursor.u32());
  const count = cursor.size();
  if (elementType === "array") {
    const value: GgufArray[] = [];
    for (let i = 0; i < count; i++) value.push(readArrayBody(cursor));
    return { type: "array", elementType, value };
  }
  if (elementType === "bool" || elementType === "string") {
    const value: Array<boolean | string> = [];
    for (let i = 0; i < count; i++) value.push(readScalar(cursor, elementType) as boolean | string);
    return { type: "array", elementType, value } as GgufArray;
  }
  const value = new TYPED_ARRAYS[elementType](count);
  for (let i = 0; i < count; i++) value[i] = readScalar(cursor, elementType) as never;
  return { type: "array", elementType, value } as GgufArray;
}

function readValue(cursor: FileCursor): GgufValue {
  const type = valueType(cursor.u32());
  if (type === "array") return readArrayBody(cursor);
  return { type, value: readScalar(cursor, type) } as GgufValue;
}

/** Parses a GGUF file's header (v2 or v3; v1 used 32-bit counts and is rejected). */
export function readGguf(path: string): GgufFile {
  const fd = fs.openSync(path, "r");
  try {
    const fileBytes = fs.fstatSync(fd).size;
    const cursor = new FileCursor(fd, fileBytes);
    const magic = String.fromCharCode(cursor.u8(), cursor.u8(), cursor.u8(), cursor.u8());
    if (magic !== GGUF_MAGIC) throw new Error(`${path}: not a GGUF file (magic ${JSON.stringify(magic)})`);
    const version = cursor.u32();
    if (version !== 2 && version !== 3) throw new Error(`${path}: unsupported GGUF version ${version}`);
    const tensorCount = cursor.size();
    const metadataCount = cursor.size();

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < metadataCount; i++) {
      const key = cursor.string();
      if (metadata.has(key)) throw new Error(`${path}: duplicate metadata key ${key}`);
      metadata.set(key, readValue(cursor));
    }
    const alignmentValue = metadata.get("general.alignment");
    const alignment = alignmentValue === undefined ? GGUF_DEFAULT_ALIGNMENT : Number(alignmentValue.value);

    const raw: Array<Omit<GgufTensorInfo, "fileOffset">> = [];
    for (let i = 0; i < tensorCount; i++) {
      const nameOffset = cursor.position + 8;
      const name = cursor.string();
      const nDims = cursor.u32();
      if (nDims < 1 || nDims > 4) throw new Error(`${path}: tensor ${name} has ${nDims} dimensions`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(cursor.size());
      const typeFieldOffset = cursor.position;
      const typeId = cursor.u32();
      const offset = cursor.size();
      const type = ggmlTypeById(typeId)?.name;
      const byteLength = type === undefined ? undefined : tensorBytes(type, dims);
      raw.push({ name, nameOffset, typeFieldOffset, dims, typeId, type, offset, byteLength });
    }
    const dataOffset = alignUp(cursor.position, alignment);
    const tensors = raw.map((t) => ({ ...t, fileOffset: dataOffset + t.offset }));
    for (const t of tensors) {
      if (t.byteLength !== undefined && t.fileOffset + t.byteLength > fileBytes) {
        throw new Error(`${path}: tensor ${t.name} extends past the end of the file`);
      }
    }
    return { path, version, alignment, metadata, tensors, dataOffset, fileBytes };
  } finally {
    fs.closeSync(fd);
  }
}

/** The raw bytes of one tensor. */
export function readTensorData(file: GgufFile, name: string): Uint8Array {
  const tensor = file.tensors.find((t) => t.name === name);
  if (tensor === undefined) throw new Error(`${file.path}: no tensor ${name}`);
  if (tensor.byteLength === undefined) throw new Error(`${file.path}: tensor ${name} has unsupported ggml type ${tensor.typeId}`);
  const bytes = new Uint8Array(tensor.byteLength);
  const fd = fs.openSync(file.path, "r");
  try {
    fs.readSync(fd, bytes, 0, bytes.length, tensor.fileOffset);
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

/** The value of a metadata key, unwrapped; throws when absent. */
export function metadataValue(file: GgufFile, key: string): GgufValue["value"] {
  const entry = file.metadata.get(key);
  if (entry === undefined) throw new Error(`${file.path}: no metadata key ${key}`);
  return entry.value;
}
