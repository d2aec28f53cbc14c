// The ggml tensor types our engine reads, with ggml's numeric ids and block geometry
// (ggml/src/ggml-common.h). A "block" is the smallest unit a row can be cut into: a row of
// n elements of type T occupies n / blockSize * blockBytes bytes, and n must divide evenly.

export type GgmlTypeName =
  | "F32" | "F16" | "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" | "Q8_0" | "Q4_K" | "Q5_K" | "Q6_K" | "BF16";

export interface GgmlTypeInfo {
  readonly name: GgmlTypeName;
  /** The id stored in GGUF tensor infos (enum ggml_type). */
  readonly id: number;
  /** Elements per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly blockBytes: number;
}

/** Super-block size of the K-quants (QK_K). */
export const QK_K = 256;

export const GGML_TYPES: Readonly<Record<GgmlTypeName, GgmlTypeInfo>> = {
  F32: { name: "F32", id: 0, blockSize: 1, blockBytes: 4 },
  F16: { name: "F16", id: 1, blockSize: 1, blockBytes: 2 },
  Q4_0: { name: "Q4_0", id: 2, blockSize: 32, blockBytes: 18 }, // f16 d, 16 bytes of nibbles
  Q4_1: { name: "Q4_1", id: 3, blockSize: 32, blockBytes: 20 }, // f16 d, f16 m, 16 bytes of nibbles
  Q5_0: { name: "Q5_0", id: 6, blockSize: 32, blockBytes: 22 }, // f16 d, u32 high bits, nibbles
  Q5_1: { name: "Q5_1", id: 7, blockSize: 32, blockBytes: 24 }, // f16 d, f16 m, u32 high bits, nibbles
  Q8_0: { name: "Q8_0", id: 8, blockSize: 32, blockBytes: 34 }, // f16 d, 32 int8
  Q4_K: { name: "Q4_K", id: 12, blockSize: QK_K, blockBytes: 144 }, // f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes
  Q5_K: { name: "Q5_K", id: 13, blockSize: QK_K, blockBytes: 176 }, // as Q4_K + 32 bytes of high bits
  Q6_K: { name: "Q6_K", id: 14, blockSize: QK_K, blockBytes: 210 }, // ql[128], qh[64], int8 scales[16], f16 d
  BF16: { name: "BF16", id: 30, blockSize: 1, blockBytes: 2 },
};

export const GGML_TYPE_NAMES = Object.keys(GGML_TYPES) as GgmlTypeName[];

const typesById = new Map<number, GgmlTypeInfo>(GGML_TYPE_NAMES.map((name) => [GGML_TYPES[name].id, GGML_TYPES[name]]));

/** The type with this ggml id, or undefined for a type we do not support. */
export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return typesById.get(id);
}

export function isGgmlTypeName(name: string): name is GgmlTypeName {
  return Object.prototype.hasOwnProperty.call(GGML_TYPES, name);
}

/** Bytes of one row of `n` elements; throws when `n` is not a whole number of blocks. */
export function rowBytes(type: GgmlTypeName, n: number): number {
  const { blockSize, blockBytes } = GGML_TYPES[type];
  if (!Number.isInteger(n) || n < 0 || n % blockSize !== 0) {
    throw new Error(`${type} rows must hold a multiple of ${blockSize} elements, got ${n}`);
  }
  return (n / blockSize) * blockBytes;
}

/** Bytes of a tensor with ggml dims (dims[0] is the contiguous row length). */
export function tensorBytes(type: GgmlTypeName, dims: readonly number[]): number {
  const rows = dims.slice(1).reduce((product, d) => product * d, 1);
  return rowBytes(type, dims[0] ?? 1) * rows;
}
