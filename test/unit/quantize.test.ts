// The ggml block codecs: hand-built golden blocks decode to known values (layouts as in ggml-common.h /
// ggml-quants.c), random data survives a round trip within per-type error bounds, and the half/bfloat16
// conversions round to nearest even, including subnormals, infinities and NaN.
import { describe, expect, it } from "vitest";

import { GGML_TYPES, GGML_TYPE_NAMES, type GgmlTypeName, rowBytes } from "../support/ggml-types";
import {
  bf16BitsToF32,
  dequantizeRow,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  isQuantizedType,
  quantizeRow,
  randomBlocks,
} from "../support/quantize";
import { SeededRandom } from "../support/test-models";

function floatFromBits(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits >>> 0);
  return view.getFloat32(0);
}

function bitsOfFloat(value: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value);
  return view.getUint32(0);
}

function f16Bytes(h: number): number[] {
  return [h & 0xff, h >>> 8];
}

/** Block bytes from a byte-offset → bytes map, checked to fill the block exactly once. */
function assembleBlock(type: GgmlTypeName, fields: Array<[number, ArrayLike<number>]>): Uint8Array {
  const block = new Uint8Array(GGML_TYPES[type].blockBytes);
  const written = new Uint8Array(block.length);
  for (const [at, bytes] of fields) {
    for (let i = 0; i < bytes.length; i++) {
      block[at + i] = bytes[i]!;
      written[at + i]! += 1;
    }
  }
  expect([...written].every((count) => count === 1)).toBe(true);
  return block;
}

describe("f16 conversion", () => {
  it.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite half
    [65519, 0x7bff], // just below the midpoint to infinity
    [65520, 0x7c00], // the midpoint: ties to the even pattern, which is infinity
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [1023.5 * 2 ** -24, 0x0400], // tie between the largest subnormal (odd) and the smallest normal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is zero
    [floatFromBits(0x33000001), 0x0001], // just above 2^-25: rounds up
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units: even is 2
    [2 ** -26, 0x0000],
    [-(2 ** -24), 0x8001],
    [floatFromBits(0x00000001), 0x0000], // float32 subnormal
    [1 + 2 ** -11, 0x3c00], // tie: stays on the even 1.0
    [1 + 3 * 2 ** -11, 0x3c02], // tie: goes up to the even neighbour
    [1 + 2 ** -11 + 2 ** -23, 0x3c01], // just above the tie
    [1 + 2 ** -11 - 2 ** -23, 0x3c00], // just below the tie
    [2047.5, 0x6800], // ulp 1 in [1024, 2048): tie between 2047 (odd) and 2048
  ])("%s -> 0x%s", (value, bits) => {
    expect(f32ToF16Bits(value).toString(16)).toBe(bits.toString(16));
  });

  it("NaN becomes the quiet NaN 0x7e00, keeping its sign", () => {
    expect(f32ToF16Bits(NaN)).toBe(0x7e00);
    expect(f32ToF16Bits(floatFromBits(0x7f800001))).toBe(0x7e00); // signalling
    expect(f32ToF16Bits(floatFromBits(0xffc00000))).toBe(0xfe00);
  });

  it("decodes subnormals, infinities, NaN and signed zero", () => {
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0x7c01)).toBeNaN();
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  it("every non-NaN half survives decode + encode", () => {
    for (let h = 0; h < 0x10000; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x03ff) !== 0;
      if (!isNaN && f32ToF16Bits(f16BitsToF32(h)) !== h) throw new Error(`half ${h.toString(16)} does not round-trip`);
    }
  });

  it("rounding error is at most half an ulp across the normal range", () => {
    const random = new SeededRandom("f16");
    for (let i = 0; i < 20000; i++) {
      const x = Math.fround((random.nextFloat() * 2 - 1) * 2 ** (random.nextFloat() * 30 - 14));
      const error = Math.abs(f16BitsToF32(f32ToF16Bits(x)) - x);
      expect(error).toBeLessThanOrEqual(2 ** -11 * Math.abs(x) + 2 ** -25);
    }
  });
});

describe("bf16 conversion (as ggml_compute_fp32_to_bf16)", () => {
  it.each([
    [0x3f800000, 0x3f80], // 1
    [0x3f808000, 0x3f80], // tie between 0x3f80 (even) and 0x3f81
    [0x3f818000, 0x3f82], // tie between 0x3f81 (odd) and 0x3f82
    [0x3f808001, 0x3f81], // just above the tie
    [0x3f807fff, 0x3f80], // just below the tie
    [0xbf818000, 0xbf82], // negative ties the same way
    [0x7f7fffff, 0x7f80], // largest float rounds to infinity
    [0x7f800000, 0x7f80], // +inf
    [0xff800000, 0xff80], // -inf
    [0x00000001, 0x0000], // subnormals round like everything else (no flush)
    [0x00018000, 0x0002],
    [0x00010000, 0x0001],
    [0x80000000, 0x8000], // -0
    [0x7fc00000, 0x7fc0], // quiet NaN
    [0x7f800001, 0x7fc0], // signalling NaN: forced quiet (bit 6), payload truncated
    [0xffa00000, 0xffe0], // negative NaN keeps its sign and gains the quiet bit
  ])("0x%s -> 0x%s", (input, bits) => {
    expect(f32ToBf16Bits(floatFromBits(input)).toString(16)).toBe(bits.toString(16));
  });

  it("every non-NaN bfloat16 survives decode + encode", () => {
    for (let h = 0; h < 0x10000; h++) {
      const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x007f) !== 0;
      if (!isNaN && f32ToBf16Bits(bf16BitsToF32(h)) !== h) throw new Error(`bf16 ${h.toString(16)} does not round-trip`);
    }
    expect(bitsOfFloat(bf16BitsToF32(0x3f81))).toBe(0x3f810000);
  });
});

describe("golden blocks", () => {
  const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

  it("Q4_0: d = 0.5; element j in byte j's low nibble, j + 16 in its high nibble; x = d (q - 8)", () => {
    // Codes: elements 0..15 are 0..15, elements 16..31 are 15..0.
    const block = Uint8Array.from([0x00, 0x38, ...range(16, (j) => j | ((15 - j) << 4))]);
    const expected = [...range(16, (j) => 0.5 * (j - 8)), ...range(16, (j) => 0.5 * (7 - j))];
    expect([...dequantizeRow("Q4_0", block, 32)]).toEqual(expected);
    // The block's largest magnitude (-4) maps to code 0, so quantizing its values reproduces it exactly.
    expect([...quantizeRow("Q4_0", Float32Array.from(expected))]).toEqual([...block]);
  });

  it("Q4_1: d = 0.25, m = -1; x = d q + m", () => {
    const codes = [...range(16, (j) => j), ...range(16, (j) => (7 * j) % 16)];
    const block = assembleBlock("Q4_1", [
      [0, f16Bytes(0x3400)],
      [2, f16Bytes(0xbc00)],
      [4, range(16, (j) => codes[j]! | (codes[j + 16]! << 4))],
    ]);
    const expected = codes.map((q) => 0.25 * q - 1);
    expect([...dequantizeRow("Q4_1", block, 32)]).toEqual(expected);
    expect([...quantizeRow("Q4_1", Float32Array.from(expected))]).toEqual([...block]);
  });

  it("Q5_0: d = 0.125, u32 qh holds bit 4 of element j at bit j; x = d (q - 16)", () => {
    // Codes 0..31 in order: elements 16..31 have the high bit, so qh = 0xffff0000.
    const block = assembleBlock("Q5_0", [
      [0, f16Bytes(0x3000)],
      [2, [0x00, 0x00, 0xff, 0xff]],
      [6, range(16, (j) => j | (j << 4))],
    ]);
    const expected = range(32, (j) => 0.125 * (j - 16));
    expect([...dequantizeRow("Q5_0", block, 32)]).toEqual(expected);
    expect([...quantizeRow("Q5_0", Float32Array.from(expected))]).toEqual([...block]);
  });

  it("Q5_1: d = 0.5, m = -3; x = d q + m", () => {
    // Codes 31..0: elements 0..15 have the high bit, so qh = 0x0000ffff.
    const codes = range(32, (j) => 31 - j);
    const block = assembleBlock("Q5_1", [
      [0, f16Bytes(0x3800)],
      [2, f16Bytes(0xc200)],
      [4, [0xff, 0xff, 0x00, 0x00]],
      [8, range(16, (j) => (codes[j]! & 15) | ((codes[j + 16]! & 15) << 4))],
    ]);
    const expected = codes.map((q) => 0.5 * q - 3);
    expect([...dequantizeRow("Q5_1", block, 32)]).toEqual(expected);
    expect([...quantizeRow("Q5_1", Float32Array.from(expected))]).toEqual([...block]);
  });

  it("Q8_0: d = 2^-6, int8 codes; x = d q", () => {
    const codes = range(32, (j) => 127 - 8 * j); // 127 .. -121
    const block = assembleBlock("Q8_0", [[0, f16Bytes(0x2400)], [2, codes.map((q) => q & 0xff)]]);
    const expected = codes.map((q) => q / 64);
    expect([...dequantizeRow("Q8_0", block, 32)]).toEqual(expected);
    expect([...quantizeRow("Q8_0", Float32Array.from(expected))]).toEqual([...block]);
  });

  // Sub-block scales and mins covering all 6 bits, packed by hand as get_scale_min_k4 reads them:
  // j < 4: scale = q[j] & 63, min = q[j+4] & 63; j >= 4: scale = (q[j+4] & 15) | (q[j-4] >> 6) << 4,
  // min = (q[j+4] >> 4) | (q[j] >> 6) << 4.
  const kScales = [1, 17, 33, 63, 2, 18, 34, 62];
  const kMins = [0, 5, 21, 63, 16, 47, 3, 60];
  const kScaleBytes = [1, 81, 161, 255, 64, 133, 21, 255, 2, 242, 50, 206];

  /** Q4_K / Q5_K codes: chunk c of 64 puts elements 64c + l and 64c + 32 + l in qs[32c + l] (low, high nibble). */
  function kBlock(type: "Q4_K" | "Q5_K", codes: number[]): Uint8Array {
    const qs = range(128, (i) => {
      const c = i >> 5;
      const l = i & 31;
      return (codes[64 * c + l]! & 15) | ((codes[64 * c + 32 + l]! & 15) << 4);
    });
    // Q5_K: qh[l] bit 2c is bit 4 of element 64c + l, bit 2c + 1 that of element 64c + 32 + l.
    const qh = range(32, (l) => range(8, (bit) => ((codes[32 * bit + l]! >> 4) & 1) << bit).reduce((a, b) => a | b));
    return assembleBlock(type, [
      [0, f16Bytes(0x2c00)], // d = 1/16
      [2, f16Bytes(0x3000)], // dmin = 1/8
      [4, kScaleBytes],
      ...(type === "Q5_K" ? ([[16, qh], [48, qs]] as Array<[number, number[]]>) : ([[16, qs]] as Array<[number, number[]]>)),
    ]);
  }

  it.each([["Q4_K", 16], ["Q5_K", 32]] as const)("%s: d = 1/16, dmin = 1/8, 6-bit packed scales/mins; x = d sc q - dmin m", (type, levels) => {
    const codes = range(256, (e) => (e * 13 + (e >> 5)) % levels);
    const expected = codes.map((q, e) => (1 / 16) * kScales[e >> 5]! * q - (1 / 8) * kMins[e >> 5]!);
    const decoded = dequantizeRow(type, kBlock(type, codes), 256);
    expect([...decoded]).toEqual(expected.map(Math.fround));
  });

  it("Q6_K: ql/qh/int8 scales/d; element e uses scales[e >> 4]; x = d sc (q - 32)", () => {
    const scales = [1, -2, 3, -4, 5, -6, 7, -8, 16, -32, 64, -128, 127, 100, -100, 0];
    const codes = range(256, (e) => (e * 5 + (e >> 4)) % 64);
    // In each half h (128 elements), for l < 32: ql[64h + l] = e(+0) | e(+64) << 4, ql[64h + 32 + l] = e(+32) | e(+96) << 4,
    // qh[32h + l] = top bits of e(+0), e(+32), e(+64), e(+96) at bits 0, 2, 4, 6, where e(+k) is element 128h + l + k.
    const q = (h: number, l: number, k: number) => codes[128 * h + l + k]!;
    const ql = range(128, (i) => {
      const h = i >> 6;
      const l = i & 31;
      const k = i & 32;
      return (q(h, l, k) & 15) | ((q(h, l, k + 64) & 15) << 4);
    });
    const qh = range(64, (i) => {
      const h = i >> 5;
      const l = i & 31;
      return (q(h, l, 0) >> 4) | ((q(h, l, 32) >> 4) << 2) | ((q(h, l, 64) >> 4) << 4) | ((q(h, l, 96) >> 4) << 6);
    });
    const block = assembleBlock("Q6_K", [[0, ql], [128, qh], [192, scales.map((s) => s & 0xff)], [208, f16Bytes(0x2800)]]);
    const expected = codes.map((c, e) => Math.fround((1 / 32) * scales[e >> 4]! * (c - 32)));
    expect([...dequantizeRow("Q6_K", block, 256)]).toEqual(expected);
  });

  it("F16 and BF16 rows are little-endian 16-bit patterns", () => {
    expect([...quantizeRow("F16", Float32Array.from([1, -2]))]).toEqual([0x00, 0x3c, 0x00, 0xc0]);
    expect([...quantizeRow("BF16", Float32Array.from([1, -2]))]).toEqual([0x80, 0x3f, 0x00, 0xc0]);
    expect([...quantizeRow("F32", Float32Array.from([1]))]).toEqual([0x00, 0x00, 0x80, 0x3f]);
  });
});

describe("round trip on random data", () => {
  // Root-mean-square error bounds for N(mu, 1) rows, mu in {0, 0.7}: about half again what the simple
  // min/max quantizer achieves (symmetric types lose more with an offset, which their bounds allow).
  const rmseBounds: Record<GgmlTypeName, number> = {
    F32: 0, F16: 4e-4, BF16: 3e-3, Q4_0: 0.13, Q4_1: 0.1, Q5_0: 0.065, Q5_1: 0.05, Q8_0: 0.009, Q4_K: 0.1, Q5_K: 0.05, Q6_K: 0.03,
  };

  it.each(GGML_TYPE_NAMES.flatMap((type) => [0, 0.7].map((mean) => [type, mean] as const)))("%s, mean %s", (type, mean) => {
    const values = new SeededRandom(`round-trip:${type}:${mean}`).fillGaussian(new Float32Array(256 * 32), mean, 1);
    const bytes = quantizeRow(type, values);
    expect(bytes.length).toBe(rowBytes(type, values.length));
    const decoded = dequantizeRow(type, bytes, values.length);
    let squaredError = 0;
    for (let i = 0; i < values.length; i++) squaredError += (decoded[i]! - values[i]!) ** 2;
    expect(Math.sqrt(squaredError / values.length)).toBeLessThanOrEqual(rmseBounds[type]);
  });

  it.each(GGML_TYPE_NAMES)("%s: zeros stay exact, constants stay close", (type) => {
    const n = GGML_TYPES[type].blockSize === 1 ? 8 : GGML_TYPES[type].blockSize * 2;
    expect([...dequantizeRow(type, quantizeRow(type, new Float32Array(n)), n)].every((x) => x === 0)).toBe(true);
    // Degenerate blocks (no spread) must not divide by zero; the scale's f16 rounding is the only error.
    for (const value of [-1.5, 3]) {
      const decoded = dequantizeRow(type, quantizeRow(type, new Float32Array(n).fill(value)), n);
      for (const x of decoded) expect(Math.abs(x - value)).toBeLessThanOrEqual(Math.abs(value) * 2 ** -10);
    }
  });

  it("rejects rows that are not whole blocks", () => {
    expect(() => quantizeRow("Q4_K", new Float32Array(128))).toThrow(/multiple of 256/);
    expect(() => quantizeRow("Q8_0", new Float32Array(33))).toThrow(/multiple of 32/);
    expect(() => dequantizeRow("Q4_0", new Uint8Array(17), 32)).toThrow(/18 bytes/);
  });
});

describe("random blocks", () => {
  const quantizedTypes = GGML_TYPE_NAMES.filter(isQuantizedType);

  it("only the block-quantized types have them", () => {
    expect(quantizedTypes).toEqual(["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]);
    expect(() => randomBlocks("F16", 4, 1, new SeededRandom(1))).toThrow(/not a block-quantized type/);
  });

  it.each(quantizedTypes)("%s: valid blocks with mean ~0 and the requested spread", (type) => {
    const blockCount = 4096 / (GGML_TYPES[type].blockSize / 32);
    const bytes = randomBlocks(type, blockCount, 0.25, new SeededRandom(`blocks:${type}`));
    expect(bytes.length).toBe(blockCount * GGML_TYPES[type].blockBytes);
    const values = dequantizeRow(type, bytes, blockCount * GGML_TYPES[type].blockSize);
    let sum = 0;
    let sumSquares = 0;
    for (const x of values) {
      sum += x;
      sumSquares += x * x;
    }
    expect(Number.isFinite(sumSquares)).toBe(true);
    const mean = sum / values.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.sqrt(sumSquares / values.length - mean * mean)).toBeCloseTo(0.25, 1);
  });
});
