// A streaming GGUF writer (spec: ggml-org/ggml docs/gguf.md). The header (metadata and tensor
// infos) is built in memory, since even a 32k-token vocabulary is well under a megabyte; tensor
// data is written one tensor at a time, so multi-gigabyte files never sit in memory.

import fs from "node:fs";
import { type GgmlTypeName, GGML_TYPES, tensorBytes } from "./ggml-types";

export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
/** 64-bit integers: bigint, or a number when it is a safe integer. */
export type GgufBigIntType = "u64" | "i64";
export type GgufScalarType = GgufNumberType | GgufBigIntType | "bool" | "string";
export type GgufValueType = GgufScalarType | "array";

export type GgufScalar =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint | number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string };

/** Elements of an array are bare values of `elementType`; nested arrays carry their own element type. */
export type GgufArray =
  | { type: "array"; elementType: GgufNumberType; value: ArrayLike<number> }
  | { type: "array"; elementType: GgufBigIntType; value: ArrayLike<bigint | number> }
  | { type: "array"; elementType: "bool"; value: ArrayLike<boolean> }
  | { type: "array"; elementType: "string"; value: ArrayLike<string> }
  | { type: "array"; elementType: "array"; value: ArrayLike<GgufArray> };

export type GgufValue = GgufScalar | GgufArray;

/** Value type ids as stored in the file (enum gguf_type). */
export const GGUF_VALUE_TYPE_IDS: Readonly<Record<GgufValueType, number>> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};

export const GGUF_MAGIC = "GGUF";
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME is 64 bytes including the NUL: llama.cpp rejects longer tensor names. */
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;

/** Tensor payload: the bytes, or a producer called when the tensor's turn comes (possibly yielding chunks). */
export type GgufTensorData = Uint8Array | (() => Uint8Array | Iterable<Uint8Array>);

export interface GgufTensorSpec {
  name: string;
  /** ggml order: dims[0] is the contiguous row length. */
  dims: number[];
  type: GgmlTypeName;
  data: GgufTensorData;
}

export interface GgufSpec {
  version?: 2 | 3;
  /** Data alignment; written as general.alignment when given (or taken from that key when present). */
  alignment?: number;
  metadata: Array<[string, GgufValue]>;
  tensors: GgufTensorSpec[];
}

export interface GgufWriteResult {
  /** Absolute file offset of the tensor data section. */
  dataOffset: number;
  fileBytes: number;
}

const INTEGER_RANGES: Record<Exclude<GgufNumberType, "f32" | "f64">, [number, number]> = {
  u8: [0, 0xff], i8: [-0x80, 0x7f], u16: [0, 0xffff], i16: [-0x8000, 0x7fff], u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff],
};
const BIGINT_RANGES: Record<GgufBigIntType, [bigint, bigint]> = {
  u64: [0n, (1n << 64n) - 1n], i64: [-(1n << 63n), (1n << 63n) - 1n],
};

/** Little-endian byte buffer that grows as the header is serialized. */
class ByteBuilder {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  length = 0;
  private readonly encoder = new TextEncoder();

  private reserve(n: number): number {
    if (this.length + n > this.bytes.length) {
      let capacity = this.bytes.length * 2;
      while (capacity < this.length + n) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // Each writer reserves before touching this.view/this.bytes: reserving may replace them.
  u8(v: number): void { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number): void { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number): void { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number): void { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number): void { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number): void { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  f32(v: number): void { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number): void { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  u64(v: bigint): void { const at = this.reserve(8); this.view.setBigUint64(at, v, true); }
  i64(v: bigint): void { const at = this.reserve(8); this.view.setBigInt64(at, v, true); }
  /** GGUF string: u64 byte length, UTF-8 bytes, no terminator. */
  string(s: string): void {
    const utf8 = this.encoder.encode(s);
    this.u64(BigInt(utf8.length));
    const at = this.reserve(utf8.length);
    this.bytes.set(utf8, at);
  }
  zeros(n: number): void { const at = this.reserve(n); this.bytes.fill(0, at, at + n); }
  result(): Uint8Array { return this.bytes.subarray(0, this.length); }
}

function checkedInteger(type: Exclude<GgufNumberType, "f32" | "f64">, v: number): number {
  const [lo, hi] = INTEGER_RANGES[type];
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${v} is not a valid ${type}`);
  return v;
}

function checkedBigInt(type: GgufBigIntType, v: bigint | number): bigint {
  if (typeof v === "number" && !Number.isSafeInteger(v)) throw new RangeError(`${v} is not a safe integer for ${type}`);
  const big = BigInt(v);
  const [lo, hi] = BIGINT_RANGES[type];
  if (big < lo || big > hi) throw new RangeError(`${v} is not a valid ${type}`);
  return big;
}

function writeScalar(out: ByteBuilder, type: GgufScalarType, v: unknown): void {
  switch (type) {
    case "u8": out.u8(checkedInteger(type, v as number)); break;
    case "i8": out.i8(checkedInteger(type, v as number)); break;
    case "u16": out.u16(checkedInteger(type, v as number)); break;
    case "i16": out.i16(checkedInteger(type, v as number)); break;
    case "u32": out.u32(checkedInteger(type, v as number)); break;
    case "i32": out.i32(checkedInteger(type, v as number)); break;
    case "f32": out.f32(v as number); break;
    case "f64": out.f64(v as number); break;
    case "u64": out.u64(checkedBigInt(type, v as bigint | number)); break;
    case "i64": out.i64(checkedBigInt(type, v as bigint | number)); break;
    case "bool":
      if (typeof v !== "boolean") throw new TypeError(`bool value must be a boolean, got ${typeof v}`);
      out.u8(v ? 1 : 0);
      break;
    case "string":
      if (typeof v !== "string") throw new TypeError(`string value must be a string, got ${typeof v}`);
      out.string(v);
      break;
  }
}

/** An array body: element type, count, elements (nested arrays repeat this form without a type tag). */
function writeArrayBody(out: ByteBuilder, array: GgufArray): void {
  out.u32(GGUF_VALUE_TYPE_IDS[array.elementType]);
  out.u64(BigInt(array.value.length));
  for (let i = 0; i < array.value.length; i++) {
    if (array.elementType === "array") writeArrayBody(out, array.value[i]!);
    else writeScalar(out, array.elementType, array.value[i]);
  }
}

function writeValue(out: ByteBuilder, value: GgufValue): void {
  out.u32(GGUF_VALUE_TYPE_IDS[value.type]);
  if (value.type === "array") writeArrayBody(out, value);
  else writeScalar(out, value.type, value.value);
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Reconciles the alignment option with a general.alignment key and returns both. */
function resolveAlignment(spec: GgufSpec): { alignment: number; metadata: Array<[string, GgufValue]> } {
  const metadata = [...spec.metadata];
  const declared = metadata.find(([key]) => key === "general.alignment")?.[1];
  if (declared && declared.type !== "u32") throw new TypeError("general.alignment must be a u32");
  const declaredValue = declared?.value as number | undefined;
  if (spec.alignment !== undefined && declaredValue !== undefined && spec.alignment !== declaredValue) {
    throw new Error(`alignment ${spec.alignment} contradicts general.alignment ${declaredValue}`);
  }
  const alignment = spec.alignment ?? declaredValue ?? GGUF_DEFAULT_ALIGNMENT;
  // ggml requires a power of two (and llama.cpp asserts it); 8-byte multiples keep every field naturally aligned.
  if (!Number.isInteger(alignment) || alignment < 8 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`alignment must be a power of two >= 8, got ${alignment}`);
  }
  if (spec.alignment !== undefined && declared === undefined) {
    metadata.push(["general.alignment", { type: "u32", value: alignment }]);
  }
  return { alignment, metadata };
}

function validateTensors(tensors: readonly GgufTensorSpec[]): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (new TextEncoder().encode(t.name).length > GGUF_MAX_TENSOR_NAME_BYTES) throw new Error(`tensor name too long: ${t.name}`);
    if (names.has(t.name)) throw new Error(`duplicate tensor name ${t.name}`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`tensor ${t.name}: dims must be 1 to 4 positive integers, got [${t.dims.join(", ")}]`);
    }
    if (!(t.type in GGML_TYPES)) throw new Error(`tensor ${t.name}: unsupported type ${t.type}`);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/** Writes a GGUF file; tensor data producers are called in order, one tensor in memory at a time. */
export function writeGguf(path: string, spec: GgufSpec): GgufWriteResult {
  const version = spec.version ?? 3;
  const { alignment, metadata } = resolveAlignment(spec);
  validateTensors(spec.tensors);

  const header = new ByteBuilder();
  for (const ch of GGUF_MAGIC) header.u8(ch.charCodeAt(0));
  header.u32(version);
  header.u64(BigInt(spec.tensors.length));
  header.u64(BigInt(metadata.length));
  for (const [key, value] of metadata) {
    header.string(key);
    writeValue(header, value);
  }

  const sizes = spec.tensors.map((t) => tensorBytes(t.type, t.dims));
  let offset = 0; // relative to the data section
  spec.tensors.forEach((t, i) => {
    header.string(t.name);
    header.u32(t.dims.length);
    for (const d of t.dims) header.u64(BigInt(d));
    header.u32(GGML_TYPES[t.type].id);
    header.u64(BigInt(offset));
    offset += alignUp(sizes[i]!, alignment);
  });
  header.zeros(alignUp(header.length, alignment) - header.length);
  const dataOffset = header.length;

  const fd = fs.openSync(path, "w");
  try {
    writeAll(fd, header.result());
    const padding = new Uint8Array(alignment);
    spec.tensors.forEach((t, i) => {
      const produced = typeof t.data === "function" ? t.data() : t.data;
      const chunks: Iterable<Uint8Array> = produced instanceof Uint8Array ? [produced] : produced;
      let written = 0;
      for (const chunk of chunks) {
        writeAll(fd, chunk);
        written += chunk.length;
      }
      if (written !== sizes[i]) {
        throw new Error(`tensor ${t.name} (${t.type} [${t.dims.join(", ")}]) needs ${sizes[i]} bytes, got ${written}`);
      }
      writeAll(fd, padding.subarray(0, alignUp(written, alignment) - written));
    });
  } finally {
    fs.closeSync(fd);
  }
  return { dataOffset, fileBytes: dataOffset + offset };
}
