// Writes GGUF files in memory for tests and the fuzz driver: well formed by default, with every field within reach
// so that a test can break exactly one thing (a count, a type id, an offset) and check the reader names it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/ggml_type.h"
#include "engine/gguf.h"

namespace pc::testing {

// Little-endian output (the engine only builds for little-endian hosts).
class ByteWriter {
 public:
  template <typename T>
  ByteWriter& put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* first = reinterpret_cast<const uint8_t*>(&value);
    bytes_.insert(bytes_.end(), first, first + sizeof(T));
    return *this;
  }
  ByteWriter& string(std::string_view text) {
    put<uint64_t>(text.size());
    bytes_.insert(bytes_.end(), text.begin(), text.end());
    return *this;
  }
  ByteWriter& append(const std::vector<uint8_t>& more) {
    bytes_.insert(bytes_.end(), more.begin(), more.end());
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 private:
  std::vector<uint8_t> bytes_;
};

class GgufBuilder {
 public:
  // Where build() put things, for tests that corrupt one field of a well-formed file.
  struct Layout {
    std::vector<size_t> metadata_entry_starts;
    size_t tensor_infos_start = 0;
    std::vector<size_t> tensor_info_starts;
    size_t data_start = 0;
  };

  uint32_t version = 3;
  uint64_t alignment = 32;  // layout of the data section; setAlignment() also writes general.alignment
  std::optional<uint64_t> tensor_count_override;
  std::optional<uint64_t> metadata_count_override;

  // A metadata entry whose value bytes (after the u32 type) are given already encoded.
  GgufBuilder& raw(const std::string& key, uint32_t type, std::vector<uint8_t> value_bytes) {
    ByteWriter entry;
    entry.string(key).put<uint32_t>(type).append(value_bytes);
    metadata_.push_back(entry.take());
    return *this;
  }
  template <typename T>
  GgufBuilder& scalar(const std::string& key, GgufValueType type, T value) {
    return raw(key, static_cast<uint32_t>(type), ByteWriter().put(value).take());
  }
  GgufBuilder& string(const std::string& key, std::string_view value) {
    return raw(key, static_cast<uint32_t>(GgufValueType::String), ByteWriter().string(value).take());
  }
  template <typename T>
  GgufBuilder& array(const std::string& key, GgufValueType element_type, const std::vector<T>& values) {
    ByteWriter value;
    value.put<uint32_t>(static_cast<uint32_t>(element_type)).put<uint64_t>(values.size());
    for (const T& item : values) {
      if constexpr (std::is_convertible_v<T, std::string_view>) {
        value.string(item);
      } else {
        value.put(item);
      }
    }
    return raw(key, static_cast<uint32_t>(GgufValueType::Array), value.take());
  }
  // A parsed value written back as it was read (the fuzz driver rebuilds a seed's metadata with this).
  GgufBuilder& value(const std::string& key, const GgufValue& value) {
    ByteWriter bytes;
    encode(bytes, value);
    return raw(key, static_cast<uint32_t>(value.type), bytes.take());
  }
  GgufBuilder& setAlignment(uint32_t value) {
    alignment = value;
    return scalar("general.alignment", GgufValueType::U32, value);
  }

  // A tensor whose data follows the previous one's (aligned) unless `offset` is given. Its bytes are filled with
  // its index + 1, so a test can see which data a tensor points at.
  GgufBuilder& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type_id,
                      std::optional<uint64_t> offset = std::nullopt) {
    tensors_.push_back({name, std::move(dims), type_id, offset});
    return *this;
  }
  GgufBuilder& tensor(const std::string& name, std::vector<uint64_t> dims, GgmlType type,
                      std::optional<uint64_t> offset = std::nullopt) {
    return tensor(name, std::move(dims), static_cast<uint32_t>(type), offset);
  }

  std::vector<uint8_t> build(Layout* layout = nullptr) const {
    Layout where;
    ByteWriter out;
    out.put<uint32_t>(0x46554747);  // "GGUF"
    out.put<uint32_t>(version);
    out.put<uint64_t>(tensor_count_override.value_or(tensors_.size()));
    out.put<uint64_t>(metadata_count_override.value_or(metadata_.size()));
    for (const std::vector<uint8_t>& entry : metadata_) {
      where.metadata_entry_starts.push_back(out.bytes().size());
      out.append(entry);
    }

    where.tensor_infos_start = out.bytes().size();
    std::vector<uint64_t> offsets;
    uint64_t next_offset = 0;
    uint64_t data_size = 0;
    for (const TensorSpec& spec : tensors_) {
      const uint64_t offset = spec.offset.value_or(next_offset);
      offsets.push_back(offset);
      if (dataBytes(spec) > 0) {
        const uint64_t end = offset + dataBytes(spec);
        next_offset = alignUp(std::max(next_offset, end));
        data_size = std::max(data_size, end);
      }
      where.tensor_info_starts.push_back(out.bytes().size());
      out.string(spec.name).put<uint32_t>(static_cast<uint32_t>(spec.dims.size()));
      for (uint64_t dim : spec.dims) out.put<uint64_t>(dim);
      out.put<uint32_t>(spec.type_id).put<uint64_t>(offset);
    }
    std::vector<uint8_t> bytes = out.take();
    where.data_start = alignUp(bytes.size());
    bytes.resize(where.data_start + data_size, 0);
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const uint64_t size = dataBytes(tensors_[i]);
      if (size > 0) std::memset(bytes.data() + where.data_start + offsets[i], static_cast<int>(i + 1), size);
    }
    if (layout) *layout = where;
    return bytes;
  }

 private:
  struct TensorSpec {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type_id;
    std::optional<uint64_t> offset;
  };

  static void encode(ByteWriter& out, const GgufValue& value) {
    switch (value.type) {
      case GgufValueType::U8:
      case GgufValueType::I8:
        out.put(static_cast<uint8_t>(value.unsigned_integer));
        break;
      case GgufValueType::U16:
      case GgufValueType::I16:
        out.put(static_cast<uint16_t>(value.unsigned_integer));
        break;
      case GgufValueType::U32:
      case GgufValueType::I32:
        out.put(static_cast<uint32_t>(value.unsigned_integer));
        break;
      case GgufValueType::U64:
      case GgufValueType::I64:
        out.put(value.unsigned_integer);
        break;
      case GgufValueType::F32: out.put(static_cast<float>(value.real)); break;
      case GgufValueType::F64: out.put(value.real); break;
      case GgufValueType::Bool: out.put<uint8_t>(value.boolean ? 1 : 0); break;
      case GgufValueType::String: out.string(value.string); break;
      case GgufValueType::Array:
        out.put(static_cast<uint32_t>(value.element_type)).put<uint64_t>(value.items.size());
        for (const GgufValue& item : value.items) encode(out, item);
        break;
    }
  }

  uint64_t alignUp(uint64_t position) const { return (position + alignment - 1) / alignment * alignment; }

  // Bytes of data to write for a tensor: none for the deliberately broken ones (unknown type, zero or absurd
  // dimensions, explicit offsets far out), whose point is that the reader refuses them before looking.
  static uint64_t dataBytes(const TensorSpec& spec) {
    constexpr uint64_t kLimit = uint64_t{1} << 26;
    const GgmlTypeInfo* info = ggmlTypeInfo(spec.type_id);
    if (info == nullptr || spec.dims.empty() || spec.offset.value_or(0) > kLimit) return 0;
    uint64_t elements = 1;
    for (uint64_t dim : spec.dims) {
      if (dim == 0 || dim > kLimit || elements * dim > kLimit) return 0;
      elements *= dim;
    }
    if (spec.dims[0] % static_cast<uint64_t>(info->block_size) != 0) return 0;
    return elements / static_cast<uint64_t>(info->block_size) * static_cast<uint64_t>(info->block_bytes);
  }

  std::vector<std::vector<uint8_t>> metadata_;
  std::vector<TensorSpec> tensors_;
};

// The tensors of a llama model with these sizes, named and shaped as readLlamaConfig requires; norms are F32,
// everything else `weight_type`. `output.weight` is left out when the LM head is tied to the embedding.
struct LlamaShape {
  uint64_t dim, kv_dim, ffn, layers, vocab;
  bool tied_output = false;
};

struct LlamaTensor {
  std::string name;
  std::vector<uint64_t> dims;
  GgmlType type;
};

inline std::vector<LlamaTensor> llamaTensors(const LlamaShape& shape, GgmlType weight_type) {
  std::vector<LlamaTensor> tensors = {{"token_embd.weight", {shape.dim, shape.vocab}, weight_type},
                                      {"output_norm.weight", {shape.dim}, GgmlType::F32}};
  if (!shape.tied_output) tensors.push_back({"output.weight", {shape.dim, shape.vocab}, weight_type});
  for (uint64_t layer = 0; layer < shape.layers; ++layer) {
    const std::string prefix = "blk." + std::to_string(layer) + ".";
    tensors.push_back({prefix + "attn_norm.weight", {shape.dim}, GgmlType::F32});
    tensors.push_back({prefix + "attn_q.weight", {shape.dim, shape.dim}, weight_type});
    tensors.push_back({prefix + "attn_k.weight", {shape.dim, shape.kv_dim}, weight_type});
    tensors.push_back({prefix + "attn_v.weight", {shape.dim, shape.kv_dim}, weight_type});
    tensors.push_back({prefix + "attn_output.weight", {shape.dim, shape.dim}, weight_type});
    tensors.push_back({prefix + "ffn_norm.weight", {shape.dim}, GgmlType::F32});
    tensors.push_back({prefix + "ffn_gate.weight", {shape.dim, shape.ffn}, weight_type});
    tensors.push_back({prefix + "ffn_up.weight", {shape.dim, shape.ffn}, weight_type});
    tensors.push_back({prefix + "ffn_down.weight", {shape.ffn, shape.dim}, weight_type});
  }
  return tensors;
}

}  // namespace pc::testing
