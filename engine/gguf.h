// GGUF reader: memory-maps a file (versions 2 and 3), parses metadata and the tensor table, and validates every
// offset and size against the file before anything is handed out, so that a corrupt or truncated file becomes a
// GgufError naming the problem, never an out-of-bounds read. Tensor data is not touched at load time: loading a
// large model costs the header parse plus the mmap.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/ggml_type.h"

namespace pc {

class GgufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class GgufValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

const char* ggufTypeName(GgufValueType type);

// Bytes the smallest encoded value of `type` occupies in a file: a scalar's size, a string's or an array's length
// fields.
uint64_t ggufMinEncodedBytes(GgufValueType type);

// One metadata value. Integers of every width are widened into `integer` (u64 values above INT64_MAX keep their
// bits in `unsigned_integer` and set `integer_overflows`); arrays keep their element type so empty arrays stay typed.
struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  GgufValueType element_type = GgufValueType::U8;  // arrays only
  int64_t integer = 0;
  uint64_t unsigned_integer = 0;
  bool integer_overflows = false;
  double real = 0.0;
  bool boolean = false;
  std::string string;
  std::vector<GgufValue> items;  // arrays only

  bool isInteger() const;  // any of the eight integer types
  bool isReal() const;     // F32 or F64
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;   // dims[0] is the contiguous row length
  uint32_t type_id = 0;        // the raw id from the file; `type()` once validated as known
  uint64_t offset = 0;         // from the start of the data section
  uint64_t byte_size = 0;      // computed from dims and the type's block layout
  const uint8_t* data = nullptr;  // points into the mapping; valid while the GgufFile lives

  GgmlType type() const { return static_cast<GgmlType>(type_id); }
  int64_t elementCount() const;
  int64_t rows() const;  // product of dims[1..]
};

class GgufFile {
 public:
  // Maps and validates `path`. Throws GgufError (naming the file and the problem) on any defect.
  static std::shared_ptr<const GgufFile> open(const std::string& path);
  // Same parse and validation over bytes held in memory (tests and the fuzz driver use this; ASan sees every
  // over-read of an exactly sized heap buffer, which it would not for a page-rounded mapping).
  static std::shared_ptr<const GgufFile> fromBytes(std::vector<uint8_t> bytes, std::string label = "<memory>");

  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t fileSize() const { return size_; }
  uint64_t dataOffset() const { return data_offset_; }
  bool isMapped() const { return mapping_ != nullptr; }  // a file mapping (open), not bytes in memory (fromBytes)

  const std::vector<GgufKeyValue>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;

  // Typed lookups. get* return nullopt when the key is absent and throw GgufError when it is present with the
  // wrong type; require* also throw when it is absent. Integer lookups accept any integer type.
  std::optional<int64_t> getInt(std::string_view key) const;
  std::optional<double> getReal(std::string_view key) const;  // accepts F32, F64 and integers
  std::optional<bool> getBool(std::string_view key) const;
  std::optional<std::string> getString(std::string_view key) const;
  // An array value whose elements have the given type (checked), or nullptr when absent.
  const GgufValue* getArray(std::string_view key, GgufValueType element_type) const;
  int64_t requireInt(std::string_view key) const;
  double requireReal(std::string_view key) const;
  std::string requireString(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* findTensor(std::string_view name) const;

 private:
  GgufFile() = default;
  void parse();  // fills everything below from bytes_/size_; throws GgufError

  std::string path_;
  const uint8_t* bytes_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;            // mmap'd region, or nullptr for fromBytes
  std::vector<uint8_t> owned_bytes_;   // fromBytes storage
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  // Name -> index into metadata_ / tensors_; the views point into those vectors, which never change after parse().
  std::unordered_map<std::string_view, size_t> metadata_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace pc
