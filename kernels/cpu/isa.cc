#include "kernels/cpu/isa.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace pc::cpu {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
uint64_t readXcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

Isa probeHardware() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return Isa::Scalar;
  const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28), f16c = ecx & (1u << 29);
  if (!(osxsave && avx && fma && f16c)) return Isa::Scalar;
  // The OS must save the wider registers on context switch: YMM state (bits 1-2), then opmask/ZMM (bits 5-7).
  const uint64_t xcr0 = readXcr0();
  if ((xcr0 & 0x6) != 0x6) return Isa::Scalar;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return Isa::Scalar;
  const bool avx2 = ebx & (1u << 5);
  if (!avx2) return Isa::Scalar;
  const bool avx512f = ebx & (1u << 16), avx512dq = ebx & (1u << 17), avx512bw = ebx & (1u << 30),
             avx512vl = ebx & (1u << 31), avx512vnni = ecx & (1u << 11);
  if (avx512f && avx512dq && avx512bw && avx512vl && avx512vnni && (xcr0 & 0xE6) == 0xE6) return Isa::Avx512;
  return Isa::Avx2;
}
#else
Isa probeHardware() { return Isa::Scalar; }
#endif

Isa capFromEnvironment(Isa hardware) {
  const char* cap = std::getenv("PYRAMID_CODER_ISA");
  if (!cap || !*cap) return hardware;
  Isa wanted = hardware;
  if (std::strcmp(cap, "scalar") == 0) wanted = Isa::Scalar;
  if (std::strcmp(cap, "avx2") == 0) wanted = Isa::Avx2;
  if (std::strcmp(cap, "avx512") == 0) wanted = Isa::Avx512;
  return wanted < hardware ? wanted : hardware;
}

}  // namespace

Isa detectIsa() {
  static const Isa isa = capFromEnvironment(probeHardware());
  return isa;
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "unknown";
}

}  // namespace pc::cpu
