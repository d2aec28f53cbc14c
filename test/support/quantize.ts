// Reference quantizers and dequantizers for the ggml block formats we support, written from
// the layouts in ggml/src/ggml-common.h and the decoders in ggml-quants.c.
//
// Dequantization is bit-exact with ggml's scalar decoders: every product below is exact in
// float64 and each result is rounded to float32 once (on the store into a Float32Array), which
// is what ggml's float32 code does. Quantization only has to produce valid, accurate blocks: it
// uses plain min/max scaling rather than ggml's error-minimizing search.

import { type GgmlTypeName, GGML_TYPES, QK_K, rowBytes } from "./ggml-types";

// ---------------------------------------------------------------------------------------------
// Half precision and bfloat16 conversion

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

function f32Bits(value: number): number {
  f32Scratch[0] = value;
  return u32Scratch[0]!;
}

function f32FromBits(bits: number): number {
  u32Scratch[0] = bits;
  return f32Scratch[0]!;
}

/** v >> shift, rounded to nearest with ties to even (v < 2^31, 1 <= shift <= 24). */
function shiftRightRoundEven(v: number, shift: number): number {
  const truncated = v >>> shift;
  const remainder = v & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return remainder > half || (remainder === half && (truncated & 1) === 1) ? truncated + 1 : truncated;
}

/**
 * IEEE half bits of a float32 value, rounded to nearest even (as F16C's vcvtps2ph and ggml's
 * software fallback). NaN becomes the quiet NaN 0x7e00 with its sign, as in ggml's fallback.
 */
export function f32ToF16Bits(value: number): number {
  const bits = f32Bits(value);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | (mantissa !== 0 ? 0x7e00 : 0x7c00);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 31) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Half subnormal: count units of 2^-24. Below 2^-25 even the tie rounds to zero.
    if (halfExponent < -10) return sign;
    return sign | shiftRightRoundEven(mantissa | 0x800000, 14 - halfExponent);
  }
  // A carry out of the mantissa bumps the exponent, up to infinity: exactly what rounding needs.
  return sign | shiftRightRoundEven((halfExponent << 23) | mantissa, 13);
}

function decodeF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** All 65536 half values, as ggml's ggml_table_f32_f16. */
const F16_TABLE = Float32Array.from({ length: 1 << 16 }, (_, h) => decodeF16(h));

export function f16BitsToF32(h: number): number {
  return F16_TABLE[h & 0xffff]!;
}

/**
 * bfloat16 bits of a float32 value as ggml_compute_fp32_to_bf16: round to nearest even,
 * NaN forced quiet, subnormals kept (current ggml no longer flushes them to zero).
 */
export function f32ToBf16Bits(value: number): number {
  const bits = f32Bits(value);
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  // No overflow past 2^32: the largest non-NaN pattern is -inf, 0xff800000.
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

export function bf16BitsToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

function readF16(bytes: Uint8Array, at: number): number {
  return F16_TABLE[bytes[at]! | (bytes[at + 1]! << 8)]!;
}

/** Stores f16(value) and returns the stored value, which quantizers must scale by. */
function writeF16(bytes: Uint8Array, at: number, value: number): number {
  const h = f32ToF16Bits(value);
  bytes[at] = h & 0xff;
  bytes[at + 1] = h >>> 8;
  return F16_TABLE[h]!;
}

/** +1 or -1 from the low bit of a random byte. */
function randomSign(randomByte: number): number {
  return randomByte & 1 ? -1 : 1;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Standard deviation of a code drawn uniformly from `levels` consecutive integers. */
function uniformCodeStd(levels: number): number {
  return Math.sqrt((levels * levels - 1) / 12);
}

// ---------------------------------------------------------------------------------------------
// Row codecs

interface RowCodec {
  /** src.length elements (a whole number of blocks) into dst. */
  quantize(src: Float32Array, dst: Uint8Array): void;
  dequantize(src: Uint8Array, dst: Float32Array): void;
  /**
   * Turns uniformly random bytes into valid blocks whose values have mean ~0 and standard
   * deviation ~std: codes stay random, scale fields are overwritten. Quantized types only.
   */
  randomize?(blocks: Uint8Array, std: number): void;
}

interface BlockCodec {
  blockSize: number;
  blockBytes: number;
  quantizeBlock(src: Float32Array, s: number, dst: Uint8Array, o: number): void;
  dequantizeBlock(src: Uint8Array, o: number, dst: Float32Array, d: number): void;
  randomizeBlock(blocks: Uint8Array, o: number, std: number): void;
}

/** A row codec from a block codec, whose geometry (derived from its layout) must agree with ggml-types. */
function blockwise(type: GgmlTypeName, codec: BlockCodec): RowCodec {
  const { blockSize, blockBytes } = codec;
  if (blockSize !== GGML_TYPES[type].blockSize || blockBytes !== GGML_TYPES[type].blockBytes) {
    throw new Error(`${type} codec has ${blockSize}-element ${blockBytes}-byte blocks, ggml-types says otherwise`);
  }
  return {
    quantize(src, dst) {
      for (let s = 0, o = 0; s < src.length; s += blockSize, o += blockBytes) codec.quantizeBlock(src, s, dst, o);
    },
    dequantize(src, dst) {
      for (let d = 0, o = 0; d < dst.length; d += blockSize, o += blockBytes) codec.dequantizeBlock(src, o, dst, d);
    },
    randomize(blocks, std) {
      for (let o = 0; o < blocks.length; o += blockBytes) codec.randomizeBlock(blocks, o, std);
    },
  };
}

const f32Codec: RowCodec = {
  quantize(src, dst) {
    const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
    for (let i = 0; i < src.length; i++) view.setFloat32(4 * i, src[i]!, true);
  },
  dequantize(src, dst) {
    const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let i = 0; i < dst.length; i++) dst[i] = view.getFloat32(4 * i, true);
  },
};

/** F16 and BF16: one 16-bit pattern per element. */
function halfWidthCodec(encode: (v: number) => number, decode: (h: number) => number): RowCodec {
  return {
    quantize(src, dst) {
      for (let i = 0; i < src.length; i++) {
        const h = encode(src[i]!);
        dst[2 * i] = h & 0xff;
        dst[2 * i + 1] = h >>> 8;
      }
    },
    dequantize(src, dst) {
      for (let i = 0; i < dst.length; i++) dst[i] = decode(src[2 * i]! | (src[2 * i + 1]! << 8));
    },
  };
}

/**
 * Q4_0, Q4_1, Q5_0, Q5_1: blocks of 32 with an f16 scale d, for the "_1" kinds an f16 min m,
 * for 5 bits a little-endian u32 of high bits (bit j belongs to element j), then 16 bytes whose
 * low nibble is element j and high nibble element j + 16.
 *   symmetric (_0): x = d * (q - 2^(bits-1)), d chosen so the largest-magnitude value maps to code 0
 *   affine (_1):    x = d * q + m, spanning [min, max]
 */
function legacyCodec(bits: 4 | 5, affine: boolean): BlockCodec {
  const levels = 1 << bits;
  const zeroPoint = levels / 2;
  const headerBytes = affine ? 4 : 2;
  const qsAt = headerBytes + (bits === 5 ? 4 : 0);
  const codes = new Uint8Array(32);
  const codeStd = uniformCodeStd(levels);
  return {
    blockSize: 32,
    blockBytes: qsAt + 16,
    quantizeBlock(src, s, dst, o) {
      let scale: number;
      let offset: number; // x ≈ scale * code + offset
      if (affine) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let j = 0; j < 32; j++) {
          const v = src[s + j]!;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        scale = writeF16(dst, o, (hi - lo) / (levels - 1));
        offset = writeF16(dst, o + 2, lo);
      } else {
        let extreme = 0;
        for (let j = 0; j < 32; j++) {
          const v = src[s + j]!;
          if (Math.abs(v) > Math.abs(extreme)) extreme = v;
        }
        scale = writeF16(dst, o, extreme / -zeroPoint);
        offset = -zeroPoint * scale;
      }
      const inverse = scale !== 0 ? 1 / scale : 0;
      for (let j = 0; j < 32; j++) codes[j] = clamp(Math.round((src[s + j]! - offset) * inverse), 0, levels - 1);
      let high = 0;
      for (let j = 0; j < 16; j++) {
        dst[o + qsAt + j] = (codes[j]! & 0x0f) | ((codes[j + 16]! & 0x0f) << 4);
        high |= (codes[j]! >>> 4) << j;
        high |= (codes[j + 16]! >>> 4) << (j + 16);
      }
      if (bits === 5) {
        for (let k = 0; k < 4; k++) dst[o + headerBytes + k] = (high >>> (8 * k)) & 0xff;
      }
    },
    dequantizeBlock(src, o, dst, d) {
      const scale = readF16(src, o);
      const min = affine ? readF16(src, o + 2) : 0;
      const high = bits === 5
        ? (src[o + headerBytes]! | (src[o + headerBytes + 1]! << 8) | (src[o + headerBytes + 2]! << 16) | (src[o + headerBytes + 3]! << 24)) >>> 0
        : 0;
      for (let j = 0; j < 16; j++) {
        const packed = src[o + qsAt + j]!;
        const q0 = (packed & 0x0f) | (((high >>> j) & 1) << 4);
        const q1 = (packed >>> 4) | (((high >>> (j + 16)) & 1) << 4);
        dst[d + j] = affine ? q0 * scale + min : (q0 - zeroPoint) * scale;
        dst[d + j + 16] = affine ? q1 * scale + min : (q1 - zeroPoint) * scale;
      }
    },
    randomizeBlock(blocks, o, std) {
      if (affine) {
        const scale = writeF16(blocks, o, std / codeStd);
        writeF16(blocks, o + 2, (-(levels - 1) / 2) * scale);
      } else {
        // Codes average half a step below the zero point; a random sign per block cancels that bias.
        writeF16(blocks, o, randomSign(blocks[o]!) * (std / codeStd));
      }
    },
  };
}

/** Q8_0: f16 d, 32 int8 codes, x = d * q. */
const q8_0: BlockCodec = {
  blockSize: 32,
  blockBytes: 34,
  quantizeBlock(src, s, dst, o) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[s + j]!));
    const scale = writeF16(dst, o, amax / 127);
    const inverse = scale !== 0 ? 1 / scale : 0;
    for (let j = 0; j < 32; j++) dst[o + 2 + j] = clamp(Math.round(src[s + j]! * inverse), -128, 127) & 0xff;
  },
  dequantizeBlock(src, o, dst, d) {
    const scale = readF16(src, o);
    for (let j = 0; j < 32; j++) dst[d + j] = ((src[o + 2 + j]! << 24) >> 24) * scale;
  },
  randomizeBlock(blocks, o, std) {
    writeF16(blocks, o, randomSign(blocks[o]!) * (std / uniformCodeStd(256)));
  },
};

/**
 * The 12-byte scale/min table of Q4_K and Q5_K: eight 6-bit scales and eight 6-bit mins, as
 * decoded by ggml's get_scale_min_k4. Sub-blocks 0-3 sit in the low 6 bits of bytes 0-3 (scales)
 * and 4-7 (mins); sub-blocks 4-7 keep their low 4 bits in bytes 8-11 (scale low nibble, min high
 * nibble) and their top 2 bits in the top 2 bits of bytes 0-3 (scales) and 4-7 (mins).
 */
function packScalesMinsK4(scales: Uint8Array, mins: Uint8Array, dst: Uint8Array, at: number): void {
  for (let k = 0; k < 4; k++) {
    dst[at + k] = scales[k]! | ((scales[k + 4]! >>> 4) << 6);
    dst[at + k + 4] = mins[k]! | ((mins[k + 4]! >>> 4) << 6);
    dst[at + k + 8] = (scales[k + 4]! & 0x0f) | ((mins[k + 4]! & 0x0f) << 4);
  }
}

function unpackScalesMinsK4(src: Uint8Array, at: number, scales: Uint8Array, mins: Uint8Array): void {
  for (let k = 0; k < 4; k++) {
    scales[k] = src[at + k]! & 63;
    mins[k] = src[at + k + 4]! & 63;
    scales[k + 4] = (src[at + k + 8]! & 0x0f) | ((src[at + k]! >>> 6) << 4);
    mins[k + 4] = (src[at + k + 8]! >>> 4) | ((src[at + k + 4]! >>> 6) << 4);
  }
}

/**
 * Q4_K and Q5_K: super-blocks of 256 = 8 sub-blocks of 32 with x = d*sc*q - dmin*m, where d and
 * dmin are f16 and sc, m are 6-bit (packScalesMinsK4). Layout: d, dmin, scales[12], for 5 bits
 * qh[32], then qs[128]. Codes go in 64-element chunks c: qs[32c + l] holds element 64c + l in
 * its low nibble and 64c + 32 + l in its high nibble; for 5 bits qh[l] bit 2c (2c + 1) holds the
 * fifth bit of element 64c + l (64c + 32 + l).
 */
function kQuantCodec(bits: 4 | 5): BlockCodec {
  const maxCode = (1 << bits) - 1;
  const qhAt = 16;
  const qsAt = bits === 5 ? 48 : 16;
  const codes = new Uint8Array(QK_K);
  const subScales = new Float32Array(8);
  const subMins = new Float32Array(8);
  const scales = new Uint8Array(8);
  const mins = new Uint8Array(8);
  const codeStd = uniformCodeStd(maxCode + 1);

  function packCodes(dst: Uint8Array, o: number): void {
    if (bits === 5) dst.fill(0, o + qhAt, o + qhAt + 32);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const lo = codes[64 * c + l]!;
        const hi = codes[64 * c + 32 + l]!;
        dst[o + qsAt + 32 * c + l] = (lo & 0x0f) | ((hi & 0x0f) << 4);
        if (bits === 5) dst[o + qhAt + l]! |= ((lo >>> 4) << (2 * c)) | ((hi >>> 4) << (2 * c + 1));
      }
    }
  }

  return {
    blockSize: QK_K,
    blockBytes: qsAt + 128,
    quantizeBlock(src, s, dst, o) {
      // Per sub-block: x ≈ scale * q - min over [min(0, lo), hi]; mins are stored as positive offsets.
      let maxScale = 0;
      let maxMin = 0;
      for (let j = 0; j < 8; j++) {
        let lo = 0;
        let hi = -Infinity;
        for (let l = 0; l < 32; l++) {
          const v = src[s + 32 * j + l]!;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        subScales[j] = (hi - lo) / maxCode;
        subMins[j] = -lo;
        maxScale = Math.max(maxScale, subScales[j]!);
        maxMin = Math.max(maxMin, subMins[j]!);
      }
      const d = writeF16(dst, o, maxScale / 63);
      const dmin = writeF16(dst, o + 2, maxMin / 63);
      for (let j = 0; j < 8; j++) {
        scales[j] = d > 0 ? clamp(Math.round(subScales[j]! / d), 0, 63) : 0;
        mins[j] = dmin > 0 ? clamp(Math.round(subMins[j]! / dmin), 0, 63) : 0;
      }
      packScalesMinsK4(scales, mins, dst, o + 4);
      for (let j = 0; j < 8; j++) {
        const step = d * scales[j]!;
        const offset = dmin * mins[j]!;
        const inverse = step > 0 ? 1 / step : 0;
        for (let l = 0; l < 32; l++) {
          codes[32 * j + l] = clamp(Math.round((src[s + 32 * j + l]! + offset) * inverse), 0, maxCode);
        }
      }
      packCodes(dst, o);
    },
    dequantizeBlock(src, o, dst, d0) {
      const d = readF16(src, o);
      const dmin = readF16(src, o + 2);
      unpackScalesMinsK4(src, o + 4, scales, mins);
      for (let c = 0; c < 4; c++) {
        const stepLo = d * scales[2 * c]!;
        const offsetLo = dmin * mins[2 * c]!;
        const stepHi = d * scales[2 * c + 1]!;
        const offsetHi = dmin * mins[2 * c + 1]!;
        for (let l = 0; l < 32; l++) {
          const packed = src[o + qsAt + 32 * c + l]!;
          const high = bits === 5 ? src[o + qhAt + l]! : 0;
          const qLo = (packed & 0x0f) | (((high >>> (2 * c)) & 1) << 4);
          const qHi = (packed >>> 4) | (((high >>> (2 * c + 1)) & 1) << 4);
          dst[d0 + 64 * c + l] = stepLo * qLo - offsetLo;
          dst[d0 + 64 * c + 32 + l] = stepHi * qHi - offsetHi;
        }
      }
    },
    randomizeBlock(blocks, o, std) {
      // Sub-block scales from the block's random bytes, in [16, 31]; mins at twice the scale (so
      // a scale/min mix-up shows) with dmin set so each sub-block is centred on zero.
      for (let j = 0; j < 8; j++) {
        scales[j] = 16 + (blocks[o + 4 + j]! & 0x0f);
        mins[j] = 2 * scales[j]!;
      }
      packScalesMinsK4(scales, mins, blocks, o + 4);
      const d = writeF16(blocks, o, std / (RMS_OF_16_TO_31 * codeStd));
      writeF16(blocks, o + 2, (d * maxCode) / 4);
    },
  };
}

/** Root mean square of the integers 16..31: the typical random sub-block scale. */
const RMS_OF_16_TO_31 = Math.sqrt(Array.from({ length: 16 }, (_, k) => (16 + k) ** 2).reduce((a, b) => a + b) / 16);

/**
 * Q6_K: super-blocks of 256 = 16 sub-blocks of 16 with x = d * sc * (q - 32), q 6-bit, sc int8,
 * d f16. Layout: ql[128], qh[64], scales[16], d. In each 128-element half h, for l < 32:
 * ql[64h + l] holds elements 128h + l (low nibble) and 128h + 64 + l (high nibble);
 * ql[64h + 32 + l] holds 128h + 32 + l and 128h + 96 + l; qh[32h + l] holds the top two bits
 * of those four elements at bits 0, 2, 4, 6 in the order +0, +32, +64, +96. Element e uses scales[e >> 4].
 */
const q6_K: BlockCodec = (() => {
  const codes = new Uint8Array(QK_K);
  const subScales = new Float32Array(16);
  const qhAt = 128;
  const scalesAt = 192;
  const dAt = 208;
  const codeStd = uniformCodeStd(64);
  return {
    blockSize: QK_K,
    blockBytes: 210,
    quantizeBlock(src, s, dst, o) {
      // Symmetric per sub-block: the largest-magnitude value maps to code 0 (q - 32 = -32).
      let extremeScale = 0;
      for (let j = 0; j < 16; j++) {
        let extreme = 0;
        for (let l = 0; l < 16; l++) {
          const v = src[s + 16 * j + l]!;
          if (Math.abs(v) > Math.abs(extreme)) extreme = v;
        }
        subScales[j] = extreme / -32;
        if (Math.abs(subScales[j]!) > Math.abs(extremeScale)) extremeScale = subScales[j]!;
      }
      const d = writeF16(dst, o + dAt, extremeScale / -128);
      for (let j = 0; j < 16; j++) {
        const sc = d !== 0 ? clamp(Math.round(subScales[j]! / d), -128, 127) : 0;
        dst[o + scalesAt + j] = sc & 0xff;
        const step = d * sc;
        const inverse = step !== 0 ? 1 / step : 0;
        for (let l = 0; l < 16; l++) codes[16 * j + l] = clamp(Math.round(src[s + 16 * j + l]! * inverse), -32, 31) + 32;
      }
      for (let h = 0; h < 2; h++) {
        for (let l = 0; l < 32; l++) {
          const e = 128 * h + l;
          const q0 = codes[e]!;
          const q1 = codes[e + 32]!;
          const q2 = codes[e + 64]!;
          const q3 = codes[e + 96]!;
          dst[o + 64 * h + l] = (q0 & 0x0f) | ((q2 & 0x0f) << 4);
          dst[o + 64 * h + 32 + l] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
          dst[o + qhAt + 32 * h + l] = (q0 >>> 4) | ((q1 >>> 4) << 2) | ((q2 >>> 4) << 4) | ((q3 >>> 4) << 6);
        }
      }
    },
    dequantizeBlock(src, o, dst, d0) {
      const d = readF16(src, o + dAt);
      for (let h = 0; h < 2; h++) {
        for (let l = 0; l < 32; l++) {
          const e = d0 + 128 * h + l;
          const lowA = src[o + 64 * h + l]!;
          const lowB = src[o + 64 * h + 32 + l]!;
          const high = src[o + qhAt + 32 * h + l]!;
          // Elements e, e+32, e+64, e+96 fall in sub-blocks s, s+2, s+4, s+6.
          const s = o + scalesAt + 8 * h + (l >>> 4);
          dst[e] = d * ((src[s]! << 24) >> 24) * (((lowA & 0x0f) | ((high & 3) << 4)) - 32);
          dst[e + 32] = d * ((src[s + 2]! << 24) >> 24) * (((lowB & 0x0f) | (((high >>> 2) & 3) << 4)) - 32);
          dst[e + 64] = d * ((src[s + 4]! << 24) >> 24) * (((lowA >>> 4) | (((high >>> 4) & 3) << 4)) - 32);
          dst[e + 96] = d * ((src[s + 6]! << 24) >> 24) * (((lowB >>> 4) | (((high >>> 6) & 3) << 4)) - 32);
        }
      }
    },
    randomizeBlock(blocks, o, std) {
      // Scales of magnitude 16..31 with random signs, which cancel the half-step bias of q - 32.
      for (let j = 0; j < 16; j++) {
        const random = blocks[o + scalesAt + j]!;
        blocks[o + scalesAt + j] = (randomSign(random >>> 4) * (16 + (random & 0x0f))) & 0xff;
      }
      writeF16(blocks, o + dAt, std / (RMS_OF_16_TO_31 * codeStd));
    },
  };
})();

const CODECS: Record<GgmlTypeName, RowCodec> = {
  F32: f32Codec,
  F16: halfWidthCodec(f32ToF16Bits, f16BitsToF32),
  BF16: halfWidthCodec(f32ToBf16Bits, bf16BitsToF32),
  Q4_0: blockwise("Q4_0", legacyCodec(4, false)),
  Q4_1: blockwise("Q4_1", legacyCodec(4, true)),
  Q5_0: blockwise("Q5_0", legacyCodec(5, false)),
  Q5_1: blockwise("Q5_1", legacyCodec(5, true)),
  Q8_0: blockwise("Q8_0", q8_0),
  Q4_K: blockwise("Q4_K", kQuantCodec(4)),
  Q5_K: blockwise("Q5_K", kQuantCodec(5)),
  Q6_K: blockwise("Q6_K", q6_K),
};

// ---------------------------------------------------------------------------------------------
// Public API

/** Encodes values (one row, or several rows back to back) as `type`; the length must be a whole number of blocks. */
export function quantizeRow(type: GgmlTypeName, values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(rowBytes(type, values.length));
  CODECS[type].quantize(values, bytes);
  return bytes;
}

/** Decodes n values of `type` from bytes, exactly as ggml's dequantize_row_* / fp16 / bf16 conversions. */
export function dequantizeRow(type: GgmlTypeName, bytes: Uint8Array, n: number): Float32Array {
  const needed = rowBytes(type, n);
  if (bytes.length < needed) throw new Error(`${n} ${type} values need ${needed} bytes, got ${bytes.length}`);
  const values = new Float32Array(n);
  CODECS[type].dequantize(bytes, values);
  return values;
}

export interface RandomSource {
  /** A uniformly random integer in [0, 2^32). */
  nextUint32(): number;
}

export function isQuantizedType(type: GgmlTypeName): boolean {
  return CODECS[type].randomize !== undefined;
}

/**
 * `blockCount` valid blocks of a quantized type with random codes, scaled so the decoded values
 * have mean ~0 and standard deviation ~std. Much faster than quantizing random floats: meant for
 * large benchmark models whose values only need to be well-conditioned, not to follow a given distribution.
 */
export function randomBlocks(type: GgmlTypeName, blockCount: number, std: number, random: RandomSource): Uint8Array {
  const codec = CODECS[type];
  if (codec.randomize === undefined) throw new Error(`randomBlocks: ${type} is not a block-quantized type`);
  const bytes = blockCount * GGML_TYPES[type].blockBytes;
  // Fill whole 32-bit words (host byte order: the content is random either way), then trim.
  const words = new Uint32Array(Math.ceil(bytes / 4));
  for (let i = 0; i < words.length; i++) words[i] = random.nextUint32();
  const blocks = new Uint8Array(words.buffer, 0, bytes);
  codec.randomize(blocks, std);
  return blocks;
}
