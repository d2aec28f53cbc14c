#include "engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <type_traits>

namespace pc {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "fields are copied from the file as host integers");

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Every parsed array element becomes a GgufValue (~100 bytes) however few bytes it had in the file, so a large
// file could otherwise make the reader allocate a hundred times its size. Real vocabularies are below a million.
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 24;
// Smallest encodings, used to reject counts the remaining bytes cannot hold before anything is allocated:
// a key-value is a 1-byte key (u64 length + byte), a u32 type and a 1-byte value; a tensor info a 1-byte name,
// u32 n_dims, one u64 dim, u32 type and u64 offset.
constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

[[noreturn]] void throwError(const std::string& path, const std::string& problem) {
  throw GgufError(path + ": " + problem);
}

// A name from the file as it appears in a message: quoted, control bytes escaped, long names cut short.
std::string quoted(std::string_view name) {
  constexpr size_t kMaxShown = 80;
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    const auto byte = static_cast<unsigned char>(name[i]);
    if (byte < 0x20 || byte == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += name[i];
    }
  }
  if (name.size() > kMaxShown) out += "...";
  return out + "'";
}

bool isKnownValueType(uint32_t raw) { return raw <= static_cast<uint32_t>(GgufValueType::F64); }

}  // namespace

uint64_t ggufMinEncodedBytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::Bool:
      return 1;
    case GgufValueType::U16:
    case GgufValueType::I16:
      return 2;
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::F32:
      return 4;
    case GgufValueType::U64:
    case GgufValueType::I64:
    case GgufValueType::F64:
    case GgufValueType::String:
      return 8;
    case GgufValueType::Array:
      return 4 + 8;
  }
  return 1;
}

namespace {

// Reads little-endian fields from [data, data + size) and never past it: every read first checks the bytes left,
// so a file that ends early becomes a GgufError saying what was being read, where.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  // What is being parsed, for messages: "metadata key 'general.name'".
  void setContext(std::string context) { context_ = std::move(context); }

  template <typename T>
  T read(const char* what) {
    static_assert(std::is_trivially_copyable_v<T>);
    require(sizeof(T), what);
    T value;
    std::memcpy(&value, data_ + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  std::string readString(const char* what) {
    const uint64_t length = read<uint64_t>(what);
    require(length, what);
    std::string text(reinterpret_cast<const char*>(data_ + position_), length);
    position_ += length;
    return text;
  }

  // A u64 count of things at least `min_item_bytes` each, refused before anyone allocates for it when the rest of
  // the file could not hold that many.
  uint64_t readCount(const char* what, uint64_t min_item_bytes) {
    const uint64_t count = read<uint64_t>(what);
    if (count > remaining() / min_item_bytes) {
      fail(std::string(what) + " is " + std::to_string(count) + ", more than the " + std::to_string(remaining()) +
           " bytes left in the file can hold (truncated or corrupt)");
    }
    return count;
  }

  uint64_t position() const { return position_; }
  uint64_t remaining() const { return size_ - position_; }

  [[noreturn]] void fail(const std::string& problem) const {
    throwError(path_, (context_.empty() ? "" : context_ + ": ") + problem);
  }

 private:
  void require(uint64_t bytes, const char* what) const {
    if (bytes > remaining()) {
      fail("truncated while reading " + std::string(what) + " (" + std::to_string(bytes) + " bytes at offset " +
           std::to_string(position_) + ", the file has " + std::to_string(remaining()) + " left)");
    }
  }

  const uint8_t* data_;
  uint64_t size_;
  uint64_t position_ = 0;
  const std::string& path_;
  std::string context_;
};

template <typename T>
void readInteger(Cursor& in, GgufValue& value) {
  const T raw = in.read<T>("an integer value");
  value.unsigned_integer = static_cast<uint64_t>(raw);  // two's complement bits for negative values
  if constexpr (std::is_same_v<T, uint64_t>) {
    value.integer_overflows = raw > kMaxInt64;
  }
  if (!value.integer_overflows) value.integer = static_cast<int64_t>(raw);
}

GgufValue readValue(Cursor& in, uint32_t raw_type, int depth) {
  if (!isKnownValueType(raw_type)) in.fail("unknown value type " + std::to_string(raw_type));
  GgufValue value;
  value.type = static_cast<GgufValueType>(raw_type);
  switch (value.type) {
    case GgufValueType::U8: readInteger<uint8_t>(in, value); break;
    case GgufValueType::I8: readInteger<int8_t>(in, value); break;
    case GgufValueType::U16: readInteger<uint16_t>(in, value); break;
    case GgufValueType::I16: readInteger<int16_t>(in, value); break;
    case GgufValueType::U32: readInteger<uint32_t>(in, value); break;
    case GgufValueType::I32: readInteger<int32_t>(in, value); break;
    case GgufValueType::U64: readInteger<uint64_t>(in, value); break;
    case GgufValueType::I64: readInteger<int64_t>(in, value); break;
    case GgufValueType::F32: value.real = in.read<float>("an f32 value"); break;
    case GgufValueType::F64: value.real = in.read<double>("an f64 value"); break;
    case GgufValueType::Bool: {
      // The spec makes any byte other than 0 and 1 invalid rather than true.
      const auto byte = in.read<uint8_t>("a bool value");
      if (byte > 1) in.fail("bool value " + std::to_string(byte) + " is neither 0 nor 1");
      value.boolean = byte == 1;
      break;
    }
    case GgufValueType::String: value.string = in.readString("a string"); break;
    case GgufValueType::Array: {
      if (depth >= kMaxArrayDepth) in.fail("arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
      const auto element_type = in.read<uint32_t>("an array element type");
      if (!isKnownValueType(element_type)) in.fail("unknown array element type " + std::to_string(element_type));
      value.element_type = static_cast<GgufValueType>(element_type);
      const uint64_t count = in.readCount("the array length", ggufMinEncodedBytes(value.element_type));
      if (count > kMaxArrayElements) {
        in.fail("array of " + std::to_string(count) + " elements exceeds the reader's limit of " +
                std::to_string(kMaxArrayElements));
      }
      value.items.reserve(count);
      for (uint64_t i = 0; i < count; ++i) value.items.push_back(readValue(in, element_type, depth + 1));
      break;
    }
  }
  return value;
}

std::string integerText(const GgufValue& value) {
  return value.integer_overflows ? std::to_string(value.unsigned_integer) : std::to_string(value.integer);
}

std::string typeDescription(const GgufValue& value) {
  if (value.type != GgufValueType::Array) return ggufTypeName(value.type);
  return std::string("array of ") + ggufTypeName(value.element_type);
}

template <typename T>
T requirePresent(std::optional<T> value, const std::string& path, std::string_view key) {
  if (!value) throwError(path, "missing metadata key " + quoted(key));
  return *std::move(value);
}

bool multiplyOverflows(uint64_t a, uint64_t b, uint64_t* product) { return __builtin_mul_overflow(a, b, product); }

uint64_t alignmentOf(const GgufValue* value, const std::string& path) {
  if (value == nullptr) return kDefaultAlignment;
  if (!value->isInteger()) {
    throwError(path, "general.alignment has type " + typeDescription(*value) + ", not an integer");
  }
  const uint64_t alignment = value->unsigned_integer;
  if (value->integer <= 0 || (alignment & (alignment - 1)) != 0) {
    throwError(path, "general.alignment " + integerText(*value) + " is not a positive power of two");
  }
  return alignment;
}

// One tensor info, checked for everything that does not depend on where the data section starts.
GgufTensorInfo readTensorInfo(Cursor& in, uint64_t alignment, const std::string& path) {
  GgufTensorInfo tensor;
  tensor.name = in.readString("a tensor name");
  if (tensor.name.empty()) in.fail("empty tensor name");
  in.setContext("tensor " + quoted(tensor.name));
  auto fail = [&](const std::string& problem) { throwError(path, "tensor " + quoted(tensor.name) + " " + problem); };

  const auto n_dims = in.read<uint32_t>("the dimension count");
  if (n_dims < 1 || n_dims > kMaxDims) fail("has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
  uint64_t element_count = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const auto dim = in.read<uint64_t>("a dimension");
    if (dim == 0 || multiplyOverflows(element_count, dim, &element_count) || element_count > kMaxInt64) {
      fail("has dimension " + std::to_string(d) + " = " + std::to_string(dim) +
           " (each must be at least 1 and their product must fit in int64)");
    }
    tensor.dims.push_back(static_cast<int64_t>(dim));
  }
  tensor.type_id = in.read<uint32_t>("the type id");
  tensor.offset = in.read<uint64_t>("the data offset");

  const GgmlTypeInfo* type = ggmlTypeInfo(tensor.type_id);
  if (type == nullptr) fail("has unknown ggml type id " + std::to_string(tensor.type_id));
  if (tensor.dims[0] % type->block_size != 0) {
    fail("has rows of " + std::to_string(tensor.dims[0]) + " elements, not a multiple of the " + type->name +
         " block size " + std::to_string(type->block_size));
  }
  const uint64_t block_count = element_count / static_cast<uint64_t>(type->block_size);
  if (multiplyOverflows(block_count, static_cast<uint64_t>(type->block_bytes), &tensor.byte_size)) {
    fail("has a byte size beyond 2^64");
  }
  if (tensor.offset % alignment != 0) {
    fail("has data offset " + std::to_string(tensor.offset) + ", not a multiple of the alignment " +
         std::to_string(alignment));
  }
  return tensor;
}

// Tensors in range of the data section may still share bytes; sorted by offset, each must end before the next.
void checkNoOverlap(const std::vector<GgufTensorInfo>& tensors, const std::string& path) {
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& tensor : tensors) by_offset.push_back(&tensor);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& before = *by_offset[i - 1];
    const GgufTensorInfo& after = *by_offset[i];
    if (before.offset + before.byte_size > after.offset) {
      throwError(path, "tensors " + quoted(before.name) + " (data bytes " + std::to_string(before.offset) + " to " +
                           std::to_string(before.offset + before.byte_size) + ") and " + quoted(after.name) +
                           " (from " + std::to_string(after.offset) + ") overlap");
    }
  }
}

}  // namespace

const char* ggufTypeName(GgufValueType type) {
  static const char* const kNames[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  const auto index = static_cast<uint32_t>(type);
  return isKnownValueType(index) ? kNames[index] : "unknown";
}

bool GgufValue::isInteger() const {
  switch (type) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::U16:
    case GgufValueType::I16:
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::U64:
    case GgufValueType::I64:
      return true;
    default:
      return false;
  }
}

bool GgufValue::isReal() const { return type == GgufValueType::F32 || type == GgufValueType::F64; }

int64_t GgufTensorInfo::elementCount() const {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<int64_t>());
}

int64_t GgufTensorInfo::rows() const {
  return dims.empty() ? 0 : std::accumulate(dims.begin() + 1, dims.end(), int64_t{1}, std::multiplies<int64_t>());
}

std::shared_ptr<const GgufFile> GgufFile::open(const std::string& path) {
  struct FileDescriptor {
    int fd;
    ~FileDescriptor() {
      if (fd >= 0) ::close(fd);
    }
  };
  const FileDescriptor file_descriptor{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file_descriptor.fd < 0) throwError(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat status {};
  if (::fstat(file_descriptor.fd, &status) != 0) throwError(path, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(status.st_mode)) throwError(path, "not a regular file");

  // Owned before mapping, so that the destructor unmaps when parse() throws.
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  file->size_ = static_cast<uint64_t>(status.st_size);
  if (file->size_ > 0) {  // mmap refuses a zero length; parse() reports the empty file
    void* mapping = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, file_descriptor.fd, 0);
    if (mapping == MAP_FAILED) throwError(path, std::string("cannot map: ") + std::strerror(errno));
    file->mapping_ = mapping;
    file->bytes_ = static_cast<const uint8_t*>(mapping);
  }
  file->parse();
  return file;
}

std::shared_ptr<const GgufFile> GgufFile::fromBytes(std::vector<uint8_t> bytes, std::string label) {
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->path_ = std::move(label);
  file->owned_bytes_ = std::move(bytes);
  file->bytes_ = file->owned_bytes_.data();
  file->size_ = file->owned_bytes_.size();
  file->parse();
  return file;
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

void GgufFile::parse() {
  Cursor in(bytes_, size_, path_);
  if (size_ < sizeof(kMagic) || std::memcmp(bytes_, kMagic, sizeof(kMagic)) != 0) {
    throwError(path_, "not a GGUF file (it does not start with the bytes 'GGUF')");
  }
  in.read<uint32_t>("the magic");
  version_ = in.read<uint32_t>("the version");
  if (version_ != 2 && version_ != 3) {
    const bool byte_swapped = version_ == 0x02000000 || version_ == 0x03000000;
    throwError(path_, "unsupported GGUF version " + std::to_string(version_) +
                          (byte_swapped ? " (a big-endian file?)" : "") + "; versions 2 and 3 are supported");
  }
  const uint64_t tensor_count = in.readCount("the tensor count", kMinTensorInfoBytes);
  const uint64_t metadata_count = in.readCount("the metadata entry count", kMinKeyValueBytes);

  metadata_.reserve(metadata_count);
  for (uint64_t i = 0; i < metadata_count; ++i) {
    in.setContext("metadata entry " + std::to_string(i));
    std::string key = in.readString("a key");
    if (key.empty()) in.fail("empty key");
    in.setContext("metadata key " + quoted(key));
    const auto type = in.read<uint32_t>("the value type");
    GgufValue value = readValue(in, type, 0);
    metadata_.push_back({std::move(key), std::move(value)});
  }
  for (size_t i = 0; i < metadata_.size(); ++i) {
    if (!metadata_index_.emplace(metadata_[i].key, i).second) {
      throwError(path_, "duplicate metadata key " + quoted(metadata_[i].key));
    }
  }
  alignment_ = alignmentOf(find("general.alignment"), path_);

  tensors_.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    in.setContext("tensor info " + std::to_string(i));
    tensors_.push_back(readTensorInfo(in, alignment_, path_));
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (!tensor_index_.emplace(tensors_[i].name, i).second) {
      throwError(path_, "duplicate tensor name " + quoted(tensors_[i].name));
    }
  }

  // Cannot overflow: the position is within the file and the alignment at most 2^62.
  const uint64_t misalignment = in.position() % alignment_;
  data_offset_ = in.position() + (misalignment == 0 ? 0 : alignment_ - misalignment);
  const uint64_t data_bytes = size_ > data_offset_ ? size_ - data_offset_ : 0;
  for (GgufTensorInfo& tensor : tensors_) {
    if (tensor.offset > data_bytes || tensor.byte_size > data_bytes - tensor.offset) {
      throwError(path_, "tensor " + quoted(tensor.name) + " data (" + std::to_string(tensor.byte_size) +
                            " bytes at file offset " + std::to_string(data_offset_) + " + " +
                            std::to_string(tensor.offset) + ") runs past the end of the file (" +
                            std::to_string(size_) + " bytes): truncated or corrupt");
    }
    tensor.data = bytes_ + data_offset_ + tensor.offset;
  }
  checkNoOverlap(tensors_, path_);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufTensorInfo* GgufFile::findTensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

[[noreturn]] void throwWrongType(const std::string& path, std::string_view key, const GgufValue& value,
                                 const std::string& expected) {
  throwError(path, "metadata key " + quoted(key) + " has type " + typeDescription(value) + ", expected " + expected);
}

}  // namespace

std::optional<int64_t> GgufFile::getInt(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (!value->isInteger()) throwWrongType(path_, key, *value, "an integer");
  if (value->integer_overflows) {
    throwError(path_, "metadata key " + quoted(key) + " = " + integerText(*value) + " does not fit in int64");
  }
  return value->integer;
}

std::optional<double> GgufFile::getReal(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (value->isReal()) return value->real;
  if (!value->isInteger()) throwWrongType(path_, key, *value, "a number");
  return value->integer_overflows ? static_cast<double>(value->unsigned_integer) : static_cast<double>(value->integer);
}

std::optional<bool> GgufFile::getBool(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufValueType::Bool) throwWrongType(path_, key, *value, "bool");
  return value->boolean;
}

std::optional<std::string> GgufFile::getString(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufValueType::String) throwWrongType(path_, key, *value, "string");
  return value->string;
}

const GgufValue* GgufFile::getArray(std::string_view key, GgufValueType element_type) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return nullptr;
  if (value->type != GgufValueType::Array || value->element_type != element_type) {
    throwWrongType(path_, key, *value, std::string("array of ") + ggufTypeName(element_type));
  }
  return value;
}

int64_t GgufFile::requireInt(std::string_view key) const { return requirePresent(getInt(key), path_, key); }

double GgufFile::requireReal(std::string_view key) const { return requirePresent(getReal(key), path_, key); }

std::string GgufFile::requireString(std::string_view key) const { return requirePresent(getString(key), path_, key); }

}  // namespace pc
