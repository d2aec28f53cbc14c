// Times model loading against plain mapping of the same file, to show that loading never reads tensor data:
// `load_bench [--repeat N] FILE...` prints one JSON object per file and stage (mmap, gguf, model), with the median
// over N runs, cold (the file's pages dropped from the page cache first) and warm.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/model.h"

namespace {

// The baseline: what it costs to map the whole file and unmap it, touching nothing.
void mapOnly(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  struct stat info {};
  ::fstat(fd, &info);
  void* mapping = ::mmap(nullptr, static_cast<size_t>(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) throw std::runtime_error("cannot map " + path);
  ::munmap(mapping, static_cast<size_t>(info.st_size));
}

// Asks the kernel to forget the file's cached pages, so the next access reads the disk (clean pages only).
void dropFromPageCache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

double medianMs(int repeat, bool cold, const std::string& path, const std::function<void()>& stage) {
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    if (cold) dropFromPageCache(path);
    auto start = std::chrono::steady_clock::now();
    stage();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 5;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: load_bench [--repeat N] FILE...\n");
    return 2;
  }
  try {
    for (const std::string& path : files) {
      struct stat info {};
      if (::stat(path.c_str(), &info) != 0) throw std::runtime_error("cannot stat " + path);
      const std::vector<std::pair<const char*, std::function<void()>>> stages = {
          {"mmap", [&] { mapOnly(path); }},
          {"gguf", [&] { pc::GgufFile::open(path); }},
          {"model", [&] { pc::Model::load(path); }},
      };
      for (const auto& [name, stage] : stages) {
        for (bool cold : {true, false}) {
          double ms = medianMs(repeat, cold, path, stage);
          std::printf("{\"file\": \"%s\", \"bytes\": %lld, \"stage\": \"%s\", \"cache\": \"%s\", \"median_ms\": %.3f}\n",
                      path.c_str(), static_cast<long long>(info.st_size), name, cold ? "cold" : "warm", ms);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
