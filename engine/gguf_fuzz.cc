// gguf_fuzz SEED_FILE [--iterations N] [--seed S]
//
// Feeds corrupted copies of a valid GGUF file through the whole load path (GgufFile, readLlamaConfig, the
// vocabulary and tokenizer) and requires each one to end in an exception or a clean load. Crashes and sanitizer
// reports end the process, so a run that prints its summary has passed. Mutations aim at the header, metadata and
// tensor table, where the parser works; the tensor data is never read at load time. Deterministic for a given seed.
#include <stdlib.h>  // mkdtemp
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/llama_config.h"
#include "engine/testing/gguf_builder.h"
#include "engine/tokenizer.h"

namespace pc {
namespace {

constexpr int kMmapEvery = 500;  // iterations between loads through GgufFile::open of a written file

// The seed's metadata (its tokenizer included) over the smallest llama the checks accept: one layer, one head of
// size 2, F16 weights, tied output. The tensor data is never read at load time, yet under AddressSanitizer every
// iteration's fresh copy costs about 2 ms per MB, so the 15 MB demo model as it is would take minutes to fuzz.
// A seed the engine refuses is fuzzed as it is.
std::vector<uint8_t> compactLlama(const std::vector<uint8_t>& seed_bytes, const GgufFile& seed) {
  try {
    readLlamaConfig(seed);
  } catch (const GgufError&) {
    return seed_bytes;
  }
  const std::map<std::string, uint32_t> kCompactSizes = {
      {"llama.embedding_length", 2},     {"llama.feed_forward_length", 2},     {"llama.block_count", 1},
      {"llama.attention.head_count", 1}, {"llama.attention.head_count_kv", 1}, {"llama.rope.dimension_count", 2},
      {"llama.attention.key_length", 2}, {"llama.attention.value_length", 2}};
  testing::GgufBuilder builder;
  builder.version = seed.version();
  builder.alignment = seed.alignment();
  for (const GgufKeyValue& entry : seed.metadata()) {
    const auto compact = kCompactSizes.find(entry.key);
    if (compact == kCompactSizes.end()) {
      builder.value(entry.key, entry.value);
    } else {
      builder.scalar(entry.key, GgufValueType::U32, compact->second);
    }
  }
  const auto vocab = static_cast<uint64_t>(seed.findTensor("token_embd.weight")->dims[1]);
  for (const testing::LlamaTensor& tensor : testing::llamaTensors({2, 2, 2, 1, vocab, true}, GgmlType::F16)) {
    builder.tensor(tensor.name, tensor.dims, tensor.type);
  }
  return builder.build();
}

// Where the seed's fields lie, recovered by re-encoding what the reader parsed (it does not expose positions).
struct SeedLayout {
  std::vector<size_t> boundaries;  // starts of the header fields, entries, tensor infos, data section; the end
  std::vector<size_t> u64_fields;  // counts, lengths, dimensions, offsets
  std::vector<size_t> u32_fields;  // version, value types, dimension counts, type ids
  size_t header_end = 0;           // start of the data section
};

// Advances `position` over one encoded value. Of the elements of an array only the first and last have their
// fields recorded, so that a 32k-token vocabulary does not drown the structural fields when picking one.
void walkValue(const GgufValue& value, size_t& position, SeedLayout& layout, bool record) {
  if (value.type == GgufValueType::String) {
    if (record) layout.u64_fields.push_back(position);
    position += 8 + value.string.size();
  } else if (value.type == GgufValueType::Array) {
    if (record) {
      layout.u32_fields.push_back(position);
      layout.u64_fields.push_back(position + 4);
    }
    position += 4 + 8;
    for (size_t i = 0; i < value.items.size(); ++i) {
      walkValue(value.items[i], position, layout, record && (i == 0 || i + 1 == value.items.size()));
    }
  } else {
    position += ggufMinEncodedBytes(value.type);
  }
}

SeedLayout describeSeed(const GgufFile& seed) {
  SeedLayout layout;
  layout.boundaries = {0, 4, 8, 16, 24};
  layout.u32_fields = {4};
  layout.u64_fields = {8, 16};
  size_t position = 24;
  for (const GgufKeyValue& entry : seed.metadata()) {
    layout.boundaries.push_back(position);
    layout.u64_fields.push_back(position);
    position += 8 + entry.key.size();
    layout.u32_fields.push_back(position);
    position += 4;
    layout.boundaries.push_back(position);
    walkValue(entry.value, position, layout, true);
  }
  for (const GgufTensorInfo& tensor : seed.tensors()) {
    layout.boundaries.push_back(position);
    layout.u64_fields.push_back(position);
    position += 8 + tensor.name.size();
    layout.u32_fields.push_back(position);
    position += 4;
    for (size_t d = 0; d < tensor.dims.size(); ++d, position += 8) layout.u64_fields.push_back(position);
    layout.u32_fields.push_back(position);
    layout.u64_fields.push_back(position + 4);
    position += 4 + 8;
  }
  layout.boundaries.push_back(position);
  layout.header_end = seed.dataOffset();
  layout.boundaries.push_back(layout.header_end);
  layout.boundaries.push_back(seed.fileSize());
  return layout;
}

class Mutator {
 public:
  Mutator(const SeedLayout& layout, uint64_t seed) : layout_(layout), rng_(seed) {}

  void mutate(std::vector<uint8_t>& bytes) {
    const int count = 1 + static_cast<int>(below(3));
    for (int i = 0; i < count && !bytes.empty(); ++i) {
      switch (below(8)) {
        case 0:  // scattered bit flips
          for (uint64_t flips = 1 + below(8); flips > 0; --flips) bytes[position(bytes)] ^= 1u << below(8);
          break;
        case 1: {  // a run of random bytes
          const size_t start = position(bytes);
          const size_t end = std::min(bytes.size(), start + 1 + below(64));
          for (size_t at = start; at < end; ++at) bytes[at] = static_cast<uint8_t>(rng_());
          break;
        }
        case 2:  // cut anywhere
          bytes.resize(below(bytes.size()));
          break;
        case 3: {  // cut near a field boundary
          const size_t boundary = pick(layout_.boundaries);
          const size_t cut = boundary + below(17) - 8;  // wraps to huge below zero, clamped next
          if (cut < bytes.size()) bytes.resize(cut);
          break;
        }
        case 4: {  // an extreme 64-bit count, length, dimension or offset
          static const uint64_t kValues[] = {0,           1,           uint64_t{1} << 31, uint64_t{1} << 32,
                                             uint64_t{1} << 63, UINT64_MAX, UINT64_MAX >> 1, uint64_t{1} << 60};
          const size_t at = pick(layout_.u64_fields);
          uint64_t value = kValues[below(std::size(kValues))];
          if (below(4) == 0) value = readU64(bytes, at) + below(5) - 2;  // off by a little
          writeField(bytes, at, value, 8);
          break;
        }
        case 5: {  // an odd 32-bit type id, version or dimension count
          static const uint32_t kValues[] = {0, 1, 2, 3, 4, 5, 9, 12, 13, 31, 39, 40, 0x80000000u, UINT32_MAX};
          writeField(bytes, pick(layout_.u32_fields), kValues[below(std::size(kValues))], 4);
          break;
        }
        case 6: {  // a range repeated in place
          const size_t start = position(bytes);
          const size_t length = std::min<size_t>(bytes.size() - start, 1 + below(256));
          const std::vector<uint8_t> range(bytes.begin() + start, bytes.begin() + start + length);
          bytes.insert(bytes.begin() + start, range.begin(), range.end());
          break;
        }
        case 7: {  // a range removed
          const size_t start = position(bytes);
          const size_t length = std::min<size_t>(bytes.size() - start, 1 + below(256));
          bytes.erase(bytes.begin() + start, bytes.begin() + start + length);
          break;
        }
      }
    }
  }

  uint64_t below(uint64_t bound) { return bound == 0 ? 0 : rng_() % bound; }

 private:
  // Mostly within the header, metadata and tensor table; now and then in the tensor data.
  size_t position(const std::vector<uint8_t>& bytes) {
    return below(below(10) == 0 ? bytes.size() : std::min(bytes.size(), layout_.header_end));
  }

  size_t pick(const std::vector<size_t>& positions) { return positions[below(positions.size())]; }

  static uint64_t readU64(const std::vector<uint8_t>& bytes, size_t at) {
    uint64_t value = 0;
    if (at + 8 <= bytes.size()) std::memcpy(&value, bytes.data() + at, 8);
    return value;
  }

  // Little-endian, clipped at the end of a buffer an earlier mutation shortened.
  static void writeField(std::vector<uint8_t>& bytes, size_t at, uint64_t value, size_t width) {
    for (size_t i = 0; i < width && at + i < bytes.size(); ++i) bytes[at + i] = static_cast<uint8_t>(value >> (8 * i));
  }

  const SeedLayout& layout_;
  std::mt19937_64 rng_;
};

struct Outcome {
  bool accepted = true;
  std::string first_error;
  bool foreign = false;  // some stage threw an exception other than GgufError
};

// Runs one stage, recording a refusal instead of stopping: later stages still get to see the file.
template <typename Stage>
void attempt(Outcome& outcome, Stage stage) {
  try {
    stage();
    return;
  } catch (const GgufError& error) {
    if (outcome.first_error.empty()) outcome.first_error = error.what();
  } catch (const std::exception& error) {
    if (!outcome.foreign) outcome.first_error = error.what();
    outcome.foreign = true;
  }
  outcome.accepted = false;
}

// The load path a model goes through before inference. The config and the tokenizer each run even when the other
// refuses, so that the tokenizer also meets metadata the config check would have stopped for unrelated reasons.
void loadEverything(Outcome& outcome, const std::shared_ptr<const GgufFile>& file) {
  attempt(outcome, [&] { readLlamaConfig(*file); });
  attempt(outcome, [&] {
    const Tokenizer tokenizer(readVocabulary(*file));
    tokenizer.encode("def f(x):\n    return x * 2  # \xc3\xa9\xe2\x96\x81 <PRE>", true);
  });
}

Outcome loadFromBytes(std::vector<uint8_t> bytes) {
  Outcome outcome;
  std::shared_ptr<const GgufFile> file;
  attempt(outcome, [&] { file = GgufFile::fromBytes(std::move(bytes), "fuzz"); });
  if (file) loadEverything(outcome, file);
  return outcome;
}

Outcome loadFromFile(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  Outcome outcome;
  std::shared_ptr<const GgufFile> file;
  attempt(outcome, [&] { file = GgufFile::open(path); });
  if (file) loadEverything(outcome, file);
  return outcome;
}

int usage() {
  std::fprintf(stderr, "usage: gguf_fuzz SEED_FILE [--iterations N] [--seed S]\n");
  return 2;
}

bool parseNumber(const char* text, uint64_t& number) {
  char* end = nullptr;
  errno = 0;
  number = std::strtoull(text, &end, 10);
  return *text != '\0' && *end == '\0' && errno == 0;
}

int run(int argc, char** argv) {
  if (argc < 2 || argc % 2 != 0) return usage();
  const std::string seed_path = argv[1];
  uint64_t iterations = 1000;
  uint64_t seed = 1;
  for (int i = 2; i < argc; i += 2) {
    const std::string flag = argv[i];
    uint64_t* target = flag == "--iterations" ? &iterations : flag == "--seed" ? &seed : nullptr;
    if (target == nullptr || !parseNumber(argv[i + 1], *target)) return usage();
  }

  std::ifstream stream(seed_path, std::ios::binary | std::ios::ate);
  if (!stream) {
    std::fprintf(stderr, "gguf_fuzz: cannot read %s\n", seed_path.c_str());
    return 2;
  }
  std::vector<uint8_t> seed_bytes(static_cast<size_t>(stream.tellg()));
  stream.seekg(0).read(reinterpret_cast<char*>(seed_bytes.data()), static_cast<std::streamsize>(seed_bytes.size()));
  std::vector<uint8_t> original;
  try {
    original = compactLlama(seed_bytes, *GgufFile::fromBytes(seed_bytes, seed_path));
  } catch (const GgufError& error) {
    std::fprintf(stderr, "gguf_fuzz: the seed is not a valid GGUF file: %s\n", error.what());
    return 2;
  }
  const SeedLayout layout = describeSeed(*GgufFile::fromBytes(original, seed_path));
  // Mutants of a seed the engine refuses mostly fail for the seed's reason; worth knowing, not fatal.
  const Outcome seed_outcome = loadFromBytes(original);
  if (!seed_outcome.accepted) {
    std::fprintf(stderr, "gguf_fuzz: note: the seed itself is refused: %s\n", seed_outcome.first_error.c_str());
  }

  const char* temp_root = std::getenv("TMPDIR");
  std::string temp_dir = std::string(temp_root && *temp_root ? temp_root : "/tmp") + "/gguf_fuzz_XXXXXX";
  if (mkdtemp(temp_dir.data()) == nullptr) {
    std::perror("gguf_fuzz: mkdtemp");
    return 2;
  }
  const std::string temp_file = temp_dir + "/mutant.gguf";

  Mutator mutator(layout, seed);
  uint64_t rejected = 0, accepted = 0, foreign = 0;
  for (uint64_t iteration = 0; iteration < iterations; ++iteration) {
    std::vector<uint8_t> bytes = original;
    mutator.mutate(bytes);
    const Outcome outcome =
        iteration % kMmapEvery == kMmapEvery - 1 ? loadFromFile(bytes, temp_file) : loadFromBytes(std::move(bytes));
    (outcome.accepted ? accepted : rejected) += 1;
    if (outcome.foreign && foreign++ == 0) {
      std::fprintf(stderr, "gguf_fuzz: iteration %llu threw a non-GgufError: %s\n",
                   static_cast<unsigned long long>(iteration), outcome.first_error.c_str());
    }
  }
  ::unlink(temp_file.c_str());
  ::rmdir(temp_dir.c_str());

  if (foreign > 0) {
    std::printf("gguf_fuzz: %llu rejections were not GgufError\n", static_cast<unsigned long long>(foreign));
  }
  std::printf("gguf_fuzz: %llu iterations, %llu rejected, %llu accepted\n", static_cast<unsigned long long>(iterations),
              static_cast<unsigned long long>(rejected), static_cast<unsigned long long>(accepted));
  return 0;
}

}  // namespace
}  // namespace pc

int main(int argc, char** argv) {
  try {
    return pc::run(argc, argv);
  } catch (const std::exception& error) {  // out of memory outside the guarded load path
    std::fprintf(stderr, "gguf_fuzz: %s\n", error.what());
    return 2;
  }
}
