// How much memory the machine can still give us, so that a request whose KV cache cannot fit fails with a clear
// message before it starts instead of being killed half-way.
#pragma once

#include <cstdint>
#include <string>

namespace pc {

// MemAvailable from /proc/meminfo (bytes), or UINT64_MAX where unknown.
uint64_t availableMemoryBytes();

// "1.5 GiB", "640 MiB", "12 KiB"
std::string formatBytes(uint64_t bytes);

}  // namespace pc
