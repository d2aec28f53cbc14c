// Which x86-64 vector extensions this CPU (and OS) supports, read once by CPUID/XGETBV. One build runs on any
// x86-64: AVX2 and AVX-512 kernels live in their own files compiled with their own flags, and are only called when
// detectIsa() says so. PYRAMID_CODER_ISA=scalar|avx2|avx512 caps the choice (tests and benchmarks use it).
#pragma once

namespace pc::cpu {

enum class Isa {
  Scalar = 0,  // portable C++: the reference, and the path on non-x86 machines
  Avx2 = 1,    // AVX2 + FMA + F16C
  Avx512 = 2,  // AVX-512 F/BW/VL/DQ + VNNI
};

Isa detectIsa();           // the best the machine supports, capped by PYRAMID_CODER_ISA
const char* isaName(Isa isa);

}  // namespace pc::cpu
