#include "engine/gguf.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "engine/testing/check.h"
#include "engine/testing/gguf_builder.h"

namespace pc {
namespace {

using testing::ByteWriter;
using testing::GgufBuilder;

constexpr uint64_t kHugeCount = uint64_t{1} << 60;

std::shared_ptr<const GgufFile> parse(const GgufBuilder& builder) {
  return GgufFile::fromBytes(builder.build(), "test.gguf");
}

std::shared_ptr<const GgufFile> parse(std::vector<uint8_t> bytes) {
  return GgufFile::fromBytes(std::move(bytes), "test.gguf");
}

// A file with some of everything: strings, an array, a float and two tensors of different types.
GgufBuilder smallFile() {
  GgufBuilder builder;
  builder.string("general.architecture", "llama")
      .scalar("llama.block_count", GgufValueType::U32, uint32_t{2})
      .scalar("llama.rope.freq_base", GgufValueType::F32, 10000.0f)
      .array("tokenizer.ggml.tokens", GgufValueType::String, std::vector<std::string>{"<unk>", "<s>", "</s>"})
      .tensor("a.weight", {64, 3}, GgmlType::Q8_0)
      .tensor("b.weight", {5}, GgmlType::F32);
  return builder;
}

// The value bytes of an array nested `levels` deep whose innermost array holds one i32, 7.
std::vector<uint8_t> nestedArray(int levels) {
  ByteWriter value;
  if (levels == 1) {
    value.put<uint32_t>(static_cast<uint32_t>(GgufValueType::I32)).put<uint64_t>(1).put<int32_t>(7);
  } else {
    value.put<uint32_t>(static_cast<uint32_t>(GgufValueType::Array)).put<uint64_t>(1).append(nestedArray(levels - 1));
  }
  return value.take();
}

template <typename T>
void overwrite(std::vector<uint8_t>& bytes, size_t position, T value) {
  std::memcpy(bytes.data() + position, &value, sizeof(T));
}

// Position of a field `skip` bytes into the tensor info of `tensor_index`, whose name is `name_length` long:
// the info is u64 length, name, u32 n_dims, u64 dims..., u32 type, u64 offset.
size_t tensorField(const GgufBuilder::Layout& layout, size_t tensor_index, size_t name_length, size_t skip) {
  return layout.tensor_info_starts[tensor_index] + 8 + name_length + skip;
}

PC_TEST(reads_every_value_type) {
  GgufBuilder builder;
  builder.scalar("u8", GgufValueType::U8, uint8_t{200})
      .scalar("i8", GgufValueType::I8, int8_t{-100})
      .scalar("u16", GgufValueType::U16, uint16_t{60000})
      .scalar("i16", GgufValueType::I16, int16_t{-30000})
      .scalar("u32", GgufValueType::U32, uint32_t{4000000000u})
      .scalar("i32", GgufValueType::I32, int32_t{-2000000000})
      .scalar("u64", GgufValueType::U64, uint64_t{1} << 40)
      .scalar("i64", GgufValueType::I64, int64_t{-(int64_t{1} << 50)})
      .scalar("f32", GgufValueType::F32, 1.5f)
      .scalar("f64", GgufValueType::F64, -2.25)
      .scalar("true", GgufValueType::Bool, uint8_t{1})
      .scalar("false", GgufValueType::Bool, uint8_t{0})
      .string("string", "hello \xe2\x96\x81 world")
      .string("empty string", "")
      .array("u8 array", GgufValueType::U8, std::vector<uint8_t>{1, 2, 255})
      .array("i16 array", GgufValueType::I16, std::vector<int16_t>{-1, 2})
      .array("f32 array", GgufValueType::F32, std::vector<float>{0.5f, -0.25f})
      .array("f64 array", GgufValueType::F64, std::vector<double>{1e300})
      .array("bool array", GgufValueType::Bool, std::vector<uint8_t>{1, 0})
      .array("u64 array", GgufValueType::U64, std::vector<uint64_t>{UINT64_MAX})
      .array("string array", GgufValueType::String, std::vector<std::string>{"a", "", "ccc"})
      .array("empty i32 array", GgufValueType::I32, std::vector<int32_t>{})
      .raw("nested", static_cast<uint32_t>(GgufValueType::Array), nestedArray(3));
  const auto file = parse(builder);
  PC_CHECK_EQ(file->metadata().size(), size_t{23});
  PC_CHECK_EQ(file->requireInt("u8"), 200);
  PC_CHECK_EQ(file->requireInt("i8"), -100);
  PC_CHECK_EQ(file->requireInt("u16"), 60000);
  PC_CHECK_EQ(file->requireInt("i16"), -30000);
  PC_CHECK_EQ(file->requireInt("u32"), int64_t{4000000000});
  PC_CHECK_EQ(file->requireInt("i32"), -2000000000);
  PC_CHECK_EQ(file->requireInt("u64"), int64_t{1} << 40);
  PC_CHECK_EQ(file->requireInt("i64"), -(int64_t{1} << 50));
  PC_CHECK_EQ(file->requireReal("f32"), 1.5);
  PC_CHECK_EQ(file->requireReal("f64"), -2.25);
  PC_CHECK_EQ(file->requireReal("i32"), -2000000000.0);  // integers are numbers too
  PC_CHECK(file->getBool("true") == true);
  PC_CHECK(file->getBool("false") == false);
  PC_CHECK_EQ(file->requireString("string"), std::string("hello \xe2\x96\x81 world"));
  PC_CHECK_EQ(file->requireString("empty string"), std::string());
  PC_CHECK(file->find("i8")->type == GgufValueType::I8);
  PC_CHECK(file->find("u32")->isInteger() && !file->find("u32")->isReal());
  PC_CHECK(file->find("f64")->isReal() && !file->find("f64")->isInteger());

  const GgufValue* bytes = file->getArray("u8 array", GgufValueType::U8);
  PC_CHECK_EQ(bytes->items.size(), size_t{3});
  PC_CHECK_EQ(bytes->items[2].integer, 255);
  PC_CHECK_EQ(file->getArray("i16 array", GgufValueType::I16)->items[0].integer, -1);
  PC_CHECK_EQ(file->getArray("f32 array", GgufValueType::F32)->items[1].real, -0.25);
  PC_CHECK_EQ(file->getArray("f64 array", GgufValueType::F64)->items[0].real, 1e300);
  PC_CHECK_EQ(file->getArray("bool array", GgufValueType::Bool)->items[0].boolean, true);
  const GgufValue& big = file->getArray("u64 array", GgufValueType::U64)->items[0];
  PC_CHECK(big.integer_overflows);
  PC_CHECK_EQ(big.unsigned_integer, UINT64_MAX);
  const GgufValue* strings = file->getArray("string array", GgufValueType::String);
  PC_CHECK_EQ(strings->items.size(), size_t{3});
  PC_CHECK_EQ(strings->items[2].string, std::string("ccc"));
  PC_CHECK_EQ(strings->items[1].string, std::string());
  PC_CHECK_EQ(file->getArray("empty i32 array", GgufValueType::I32)->items.size(), size_t{0});

  const GgufValue* nested = file->getArray("nested", GgufValueType::Array);
  PC_CHECK_EQ(nested->items.size(), size_t{1});
  const GgufValue& middle = nested->items[0];
  PC_CHECK(middle.type == GgufValueType::Array);
  PC_CHECK(middle.element_type == GgufValueType::Array);
  const GgufValue& inner = middle.items[0];
  PC_CHECK(inner.element_type == GgufValueType::I32);
  PC_CHECK_EQ(inner.items[0].integer, 7);

  PC_CHECK(file->find("absent") == nullptr);
  PC_CHECK(!file->getInt("absent").has_value());
  PC_CHECK(file->getArray("absent", GgufValueType::String) == nullptr);
  PC_CHECK_EQ(std::string(ggufTypeName(GgufValueType::F64)), std::string("f64"));
}

PC_TEST(typed_lookups_reject_the_wrong_type) {
  GgufBuilder builder;
  builder.string("name", "x")
      .scalar("count", GgufValueType::U32, uint32_t{3})
      .scalar("huge", GgufValueType::U64, UINT64_MAX)
      .array("scores", GgufValueType::F32, std::vector<float>{1.0f});
  const auto file = parse(builder);
  PC_CHECK_THROWS(file->getInt("name"), "test.gguf: metadata key 'name' has type string, expected an integer");
  PC_CHECK_THROWS(file->getInt("huge"), "'huge' = 18446744073709551615 does not fit in int64");
  PC_CHECK_EQ(file->requireReal("huge"), 18446744073709551615.0);
  PC_CHECK_THROWS(file->getReal("name"), "expected a number");
  PC_CHECK_THROWS(file->getBool("count"), "has type u32, expected bool");
  PC_CHECK_THROWS(file->getString("count"), "expected string");
  PC_CHECK_THROWS(file->getArray("scores", GgufValueType::I32), "has type array of f32, expected array of i32");
  PC_CHECK_THROWS(file->getArray("count", GgufValueType::U32), "has type u32, expected array of u32");
  PC_CHECK_THROWS(file->requireInt("llama.block_count"), "test.gguf: missing metadata key 'llama.block_count'");
  PC_CHECK_THROWS(file->requireReal("absent"), "missing metadata key 'absent'");
  PC_CHECK_THROWS(file->requireString("absent"), "missing metadata key 'absent'");
  PC_CHECK_EQ(file->requireInt("count"), 3);
  PC_CHECK_EQ(file->requireString("name"), std::string("x"));
}

PC_TEST(reads_versions_2_and_3_and_refuses_others) {
  for (uint32_t version : {2u, 3u}) {
    GgufBuilder builder = smallFile();
    builder.version = version;
    const auto file = parse(builder);
    PC_CHECK_EQ(file->version(), version);
    PC_CHECK_EQ(file->tensors().size(), size_t{2});
  }
  for (uint32_t version : {0u, 1u, 4u, 0xffffffffu}) {
    GgufBuilder builder = smallFile();
    builder.version = version;
    PC_CHECK_THROWS(parse(builder), "test.gguf: unsupported GGUF version " + std::to_string(version));
  }
  GgufBuilder big_endian = smallFile();
  big_endian.version = 0x03000000;
  PC_CHECK_THROWS(parse(big_endian), "big-endian");
}

PC_TEST(refuses_what_is_not_gguf) {
  PC_CHECK_THROWS(parse(std::vector<uint8_t>{}), "test.gguf: not a GGUF file");
  PC_CHECK_THROWS(parse(std::vector<uint8_t>{'G', 'G', 'U'}), "not a GGUF file");
  std::vector<uint8_t> elf = smallFile().build();
  std::memcpy(elf.data(), "\x7f" "ELF", 4);
  PC_CHECK_THROWS(parse(elf), "not a GGUF file");
  std::vector<uint8_t> lowercase = smallFile().build();
  lowercase[0] = 'g';
  PC_CHECK_THROWS(parse(lowercase), "not a GGUF file");
}

PC_TEST(lays_out_tensors_after_the_aligned_table) {
  GgufBuilder builder = smallFile();
  builder.tensor("c.weight", {256, 2}, GgmlType::Q4_K)
      .tensor("d.weight", {256}, GgmlType::Q6_K)
      .tensor("e.weight", {3, 2, 2, 2}, GgmlType::F16)
      .tensor("f.weight", {7}, GgmlType::BF16);
  GgufBuilder::Layout layout;
  const auto file = parse(builder.build(&layout));
  PC_CHECK_EQ(file->alignment(), uint64_t{32});
  PC_CHECK_EQ(file->dataOffset(), uint64_t{layout.data_start});
  PC_CHECK_EQ(file->dataOffset() % 32, uint64_t{0});
  PC_CHECK_EQ(file->tensors().size(), size_t{6});

  const GgufTensorInfo* a = file->findTensor("a.weight");
  PC_CHECK(a->type() == GgmlType::Q8_0);
  PC_CHECK_EQ(a->byte_size, uint64_t{2 * 34 * 3});
  PC_CHECK_EQ(a->elementCount(), int64_t{192});
  PC_CHECK_EQ(a->rows(), int64_t{3});
  PC_CHECK_EQ(a->offset, uint64_t{0});
  PC_CHECK(a->data == file->findTensor("a.weight")->data);
  PC_CHECK_EQ(a->data[0], uint8_t{1});  // the builder fills tensor i with i + 1
  PC_CHECK_EQ(a->data[a->byte_size - 1], uint8_t{1});
  const GgufTensorInfo* b = file->findTensor("b.weight");
  PC_CHECK_EQ(b->byte_size, uint64_t{20});
  PC_CHECK_EQ(b->offset, uint64_t{224});  // 204 rounded up to 32
  PC_CHECK_EQ(b->data[0], uint8_t{2});
  PC_CHECK_EQ(file->findTensor("c.weight")->byte_size, uint64_t{2 * 144});
  PC_CHECK_EQ(file->findTensor("d.weight")->byte_size, uint64_t{210});
  const GgufTensorInfo* e = file->findTensor("e.weight");
  PC_CHECK_EQ(e->byte_size, uint64_t{24 * 2});
  PC_CHECK_EQ(e->rows(), int64_t{8});
  PC_CHECK(e->dims == (std::vector<int64_t>{3, 2, 2, 2}));
  PC_CHECK_EQ(file->findTensor("f.weight")->byte_size, uint64_t{14});
  PC_CHECK_EQ(file->findTensor("f.weight")->data[13], uint8_t{6});
  PC_CHECK(file->findTensor("absent") == nullptr);
}

PC_TEST(honours_general_alignment) {
  for (uint32_t alignment : {1u, 8u, 64u, 4096u}) {
    GgufBuilder builder = smallFile();
    builder.setAlignment(alignment);
    const auto file = parse(builder);
    PC_CHECK_EQ(file->alignment(), uint64_t{alignment});
    PC_CHECK_EQ(file->dataOffset() % alignment, uint64_t{0});
    PC_CHECK_EQ(file->findTensor("b.weight")->offset % alignment, uint64_t{0});
    PC_CHECK_EQ(file->findTensor("b.weight")->data[0], uint8_t{2});
  }
  // Any integer type will do for the alignment.
  for (GgufValueType type : {GgufValueType::U8, GgufValueType::I16, GgufValueType::U64, GgufValueType::I64}) {
    GgufBuilder builder = smallFile();
    builder.alignment = 16;
    if (type == GgufValueType::U8) builder.scalar("general.alignment", type, uint8_t{16});
    if (type == GgufValueType::I16) builder.scalar("general.alignment", type, int16_t{16});
    if (type == GgufValueType::U64) builder.scalar("general.alignment", type, uint64_t{16});
    if (type == GgufValueType::I64) builder.scalar("general.alignment", type, int64_t{16});
    PC_CHECK_EQ(parse(builder)->alignment(), uint64_t{16});
  }
  auto withAlignment = [](auto value, GgufValueType type) {
    GgufBuilder builder = smallFile();
    builder.scalar("general.alignment", type, value);
    return builder.build();
  };
  PC_CHECK_THROWS(parse(withAlignment(uint32_t{0}, GgufValueType::U32)),
                  "general.alignment 0 is not a positive power of two");
  PC_CHECK_THROWS(parse(withAlignment(uint32_t{48}, GgufValueType::U32)), "general.alignment 48 is not");
  PC_CHECK_THROWS(parse(withAlignment(int32_t{-32}, GgufValueType::I32)), "general.alignment -32 is not");
  PC_CHECK_THROWS(parse(withAlignment(UINT64_MAX, GgufValueType::U64)), "general.alignment 18446744073709551615 is");
  PC_CHECK_THROWS(parse(withAlignment(32.0f, GgufValueType::F32)), "general.alignment has type f32, not an integer");
  PC_CHECK_THROWS(parse(withAlignment(uint64_t{1} << 62, GgufValueType::U64)),
                  "tensor 'b.weight' has data offset 224, not a multiple of the alignment 4611686018427387904");
  // A huge alignment puts the data section past the end of the file.
  PC_CHECK_THROWS(parse(GgufBuilder().scalar("general.alignment", GgufValueType::U64, uint64_t{1} << 62)
                            .tensor("a", {8}, GgmlType::F32)),
                  "tensor 'a' data (32 bytes at file offset 4611686018427387904 + 0) runs past the end of the file");
}

PC_TEST(every_truncation_is_an_error) {
  const std::vector<uint8_t> whole = smallFile().build();
  PC_CHECK(parse(whole) != nullptr);
  for (size_t length = 0; length < whole.size(); ++length) {
    std::string message;
    try {
      parse(std::vector<uint8_t>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(length)));
    } catch (const GgufError& error) {
      message = error.what();
    }
    const bool named = message.rfind("test.gguf: ", 0) == 0;
    const bool explained = message.find("truncated") != std::string::npos ||
                           message.find("not a GGUF file") != std::string::npos ||
                           message.find("past the end") != std::string::npos;
    if (!named || !explained) {
      testing::fail(__FILE__, __LINE__, "prefix of " + std::to_string(length) + " bytes: '" + message + "'");
    }
  }
  GgufBuilder::Layout layout;
  const std::vector<uint8_t> bytes = smallFile().build(&layout);
  auto prefix = [&](size_t length) { return std::vector<uint8_t>(bytes.begin(), bytes.begin() + length); };
  PC_CHECK_THROWS(parse(prefix(6)), "test.gguf: truncated while reading the version (4 bytes at offset 4");
  PC_CHECK_THROWS(parse(prefix(20)),
                  "test.gguf: the tensor count is 2, more than the 4 bytes left in the file can hold");
  const std::vector<uint8_t> no_tensors = GgufBuilder().string("k", "v").build();
  PC_CHECK_THROWS(parse(std::vector<uint8_t>(no_tensors.begin(), no_tensors.begin() + 20)),
                  "test.gguf: truncated while reading the metadata entry count "
                  "(8 bytes at offset 16, the file has 4 left)");
  // The last metadata entry is "tokenizer.ggml.tokens" (21 bytes); the counts are plausible for these prefixes.
  const size_t last_entry = layout.metadata_entry_starts[3];
  PC_CHECK_THROWS(parse(prefix(last_entry + 3)), "metadata entry 3: truncated while reading a key");
  PC_CHECK_THROWS(parse(prefix(last_entry + 8 + 10)), "metadata entry 3: truncated while reading a key (21 bytes");
  PC_CHECK_THROWS(parse(prefix(last_entry + 8 + 21 + 2)),
                  "metadata key 'tokenizer.ggml.tokens': truncated while reading the value type");
  PC_CHECK_THROWS(parse(prefix(last_entry + 8 + 21 + 4 + 3)),
                  "metadata key 'tokenizer.ggml.tokens': truncated while reading an array element type");
  PC_CHECK_THROWS(parse(prefix(layout.tensor_infos_start - 2)),
                  "metadata key 'tokenizer.ggml.tokens': truncated while reading a string");
  PC_CHECK_THROWS(parse(prefix(layout.tensor_infos_start + 10)),
                  "tensor info 0: truncated while reading a tensor name");
  PC_CHECK_THROWS(parse(prefix(tensorField(layout, 1, 8, 4 + 8 + 2))),
                  "tensor 'b.weight': truncated while reading the type id");
  PC_CHECK_THROWS(parse(prefix(layout.data_start + 10)),
                  "tensor 'a.weight' data (204 bytes at file offset " + std::to_string(layout.data_start) +
                      " + 0) runs past the end of the file");
  PC_CHECK_THROWS(parse(prefix(bytes.size() - 1)), "tensor 'b.weight' data");
}

PC_TEST(huge_counts_are_refused_before_allocating) {
  {
    GgufBuilder builder = smallFile();
    builder.tensor_count_override = kHugeCount;
    PC_CHECK_THROWS(parse(builder), "test.gguf: the tensor count is 1152921504606846976, more than the");
  }
  {
    GgufBuilder builder = smallFile();
    builder.metadata_count_override = kHugeCount;
    PC_CHECK_THROWS(parse(builder), "the metadata entry count is 1152921504606846976");
  }
  {
    GgufBuilder builder;
    builder.raw("big array", static_cast<uint32_t>(GgufValueType::Array),
                ByteWriter().put<uint32_t>(static_cast<uint32_t>(GgufValueType::U8)).put<uint64_t>(kHugeCount).take());
    PC_CHECK_THROWS(parse(builder), "metadata key 'big array': the array length is 1152921504606846976, more than");
  }
  {
    // A count the file can back, but past what the reader is willing to allocate GgufValues for.
    const uint64_t count = (uint64_t{1} << 24) + 1;
    GgufBuilder builder;
    builder.raw("bytes", static_cast<uint32_t>(GgufValueType::Array),
                ByteWriter().put<uint32_t>(static_cast<uint32_t>(GgufValueType::U8)).put<uint64_t>(count)
                    .append(std::vector<uint8_t>(count, 0)).take());
    PC_CHECK_THROWS(parse(builder), "metadata key 'bytes': array of 16777217 elements exceeds the reader's limit");
  }
  {
    // Strings take at least 8 bytes each, so 100 of them do not fit in 100 bytes.
    GgufBuilder builder;
    builder.raw("strings", static_cast<uint32_t>(GgufValueType::Array),
                ByteWriter().put<uint32_t>(static_cast<uint32_t>(GgufValueType::String)).put<uint64_t>(100)
                    .append(std::vector<uint8_t>(100, 0)).take());
    PC_CHECK_THROWS(parse(builder), "metadata key 'strings': the array length is 100, more than the");
  }
  {
    GgufBuilder builder;
    builder.raw("long string", static_cast<uint32_t>(GgufValueType::String),
                ByteWriter().put<uint64_t>(kHugeCount).take());
    PC_CHECK_THROWS(parse(builder),
                    "metadata key 'long string': truncated while reading a string (1152921504606846976 bytes");
  }
  {
    std::vector<uint8_t> bytes = GgufBuilder().scalar("k", GgufValueType::U8, uint8_t{1}).build();
    overwrite<uint64_t>(bytes, 24, kHugeCount);  // the key's length
    PC_CHECK_THROWS(parse(bytes), "metadata entry 0: truncated while reading a key");
  }
  {
    GgufBuilder::Layout layout;
    std::vector<uint8_t> bytes = smallFile().build(&layout);
    overwrite<uint64_t>(bytes, layout.tensor_info_starts[0], UINT64_MAX);  // the tensor name's length
    PC_CHECK_THROWS(parse(bytes), "tensor info 0: truncated while reading a tensor name");
  }
}

PC_TEST(arrays_nest_up_to_a_limit) {
  for (int levels = 1; levels <= 8; ++levels) {
    GgufBuilder builder;
    builder.raw("nested", static_cast<uint32_t>(GgufValueType::Array), nestedArray(levels));
    const auto file = parse(builder);
    const GgufValue* value = file->find("nested");
    for (int level = 1; level < levels; ++level) value = &value->items.at(0);
    PC_CHECK_EQ(value->items.at(0).integer, 7);
  }
  GgufBuilder builder;
  builder.raw("nested", static_cast<uint32_t>(GgufValueType::Array), nestedArray(9));
  PC_CHECK_THROWS(parse(builder), "metadata key 'nested': arrays nested more than 8 deep");
}

PC_TEST(malformed_metadata_is_named) {
  PC_CHECK_THROWS(parse(GgufBuilder().raw("general.odd", 13, {0, 0, 0, 0})),
                  "test.gguf: metadata key 'general.odd': unknown value type 13");
  PC_CHECK_THROWS(parse(GgufBuilder().raw("general.odd", 0xffffffff, {})), "unknown value type 4294967295");
  PC_CHECK_THROWS(parse(GgufBuilder().raw("general.list", static_cast<uint32_t>(GgufValueType::Array),
                                          ByteWriter().put<uint32_t>(99).put<uint64_t>(0).take())),
                  "metadata key 'general.list': unknown array element type 99");
  PC_CHECK_THROWS(parse(GgufBuilder().scalar("flag", GgufValueType::Bool, uint8_t{2})),
                  "metadata key 'flag': bool value 2 is neither 0 nor 1");
  PC_CHECK_THROWS(parse(GgufBuilder().string("", "x")), "metadata entry 0: empty key");
  PC_CHECK_THROWS(parse(GgufBuilder().string("a", "x").scalar("a", GgufValueType::U8, uint8_t{1})),
                  "test.gguf: duplicate metadata key 'a'");
  // Keys are any bytes; messages escape the unprintable ones and cut long ones short.
  PC_CHECK_THROWS(parse(GgufBuilder().raw(std::string("bad\x01key", 7), 42, {})), "metadata key 'bad\\x01key'");
  PC_CHECK_THROWS(parse(GgufBuilder().raw(std::string(1000, 'k'), 42, {})), "'" + std::string(80, 'k') + "...'");
  PC_CHECK_EQ(parse(GgufBuilder().string("\xff\xfe", "v"))->requireString("\xff\xfe"), std::string("v"));
}

PC_TEST(malformed_tensor_infos_are_named) {
  auto oneTensor = [](std::vector<uint64_t> dims, uint32_t type) {
    return GgufBuilder().tensor("t.weight", std::move(dims), type).build();
  };
  const auto f32 = static_cast<uint32_t>(GgmlType::F32);
  const auto q8_0 = static_cast<uint32_t>(GgmlType::Q8_0);
  PC_CHECK_THROWS(parse(oneTensor({}, f32)), "test.gguf: tensor 't.weight' has 0 dimensions (1 to 4 allowed)");
  PC_CHECK_THROWS(parse(oneTensor({1, 1, 1, 1, 1}, f32)), "tensor 't.weight' has 5 dimensions");
  PC_CHECK_THROWS(parse(oneTensor({4, 0}, f32)), "tensor 't.weight' has dimension 1 = 0");
  PC_CHECK_THROWS(parse(oneTensor({uint64_t{1} << 40, uint64_t{1} << 40}, f32)), "has dimension 1 = 1099511627776");
  PC_CHECK_THROWS(parse(oneTensor({UINT64_MAX}, f32)), "has dimension 0 = 18446744073709551615");
  // The element count fits in int64 but the byte size does not fit in 64 bits.
  PC_CHECK_THROWS(parse(oneTensor({uint64_t{1} << 62}, 28 /* F64 */)), "byte size beyond");
  PC_CHECK_THROWS(parse(oneTensor({32}, 4)), "tensor 't.weight' has unknown ggml type id 4");
  PC_CHECK_THROWS(parse(oneTensor({32}, 31)), "unknown ggml type id 31");
  PC_CHECK_THROWS(parse(oneTensor({32}, 1000)), "unknown ggml type id 1000");
  PC_CHECK_THROWS(parse(oneTensor({33, 2}, q8_0)),
                  "tensor 't.weight' has rows of 33 elements, not a multiple of the Q8_0 block size 32");
  PC_CHECK_THROWS(parse(oneTensor({128}, static_cast<uint32_t>(GgmlType::Q4_K))), "Q4_K block size 256");
  // Types the engine cannot compute with are still read (validation of the model is llama_config's business).
  const auto q2_k = parse(oneTensor({256}, static_cast<uint32_t>(GgmlType::Q2_K)));
  PC_CHECK_EQ(q2_k->tensors()[0].byte_size, uint64_t{84});

  PC_CHECK_THROWS(parse(GgufBuilder().tensor("", {4}, GgmlType::F32)), "tensor info 0: empty tensor name");
  PC_CHECK_THROWS(parse(GgufBuilder().tensor("x", {4}, GgmlType::F32).tensor("x", {4}, GgmlType::F32)),
                  "test.gguf: duplicate tensor name 'x'");
  PC_CHECK_THROWS(parse(GgufBuilder().tensor("x", {4}, GgmlType::F32, 16)),
                  "tensor 'x' has data offset 16, not a multiple of the alignment 32");
  PC_CHECK_THROWS(parse(GgufBuilder().tensor("x", {4}, GgmlType::F32, uint64_t{1} << 40)),
                  "tensor 'x' data (16 bytes at file offset 64 + 1099511627776) runs past the end of the file");
  PC_CHECK_THROWS(parse(GgufBuilder().tensor("x", {4}, GgmlType::F32, UINT64_MAX - 31)), "runs past the end");
  // Two tensors sharing bytes, whichever comes first in the table.
  PC_CHECK_THROWS(parse(GgufBuilder().tensor("x", {64}, GgmlType::F32).tensor("y", {8}, GgmlType::F32, 128)),
                  "tensors 'x' (data bytes 0 to 256) and 'y' (from 128) overlap");
  PC_CHECK_THROWS(parse(GgufBuilder().tensor("y", {8}, GgmlType::F32, 32).tensor("x", {64}, GgmlType::F32, 0)),
                  "tensors 'x' (data bytes 0 to 256) and 'y' (from 32) overlap");
  PC_CHECK_THROWS(parse(GgufBuilder().tensor("x", {8}, GgmlType::F32).tensor("y", {8}, GgmlType::F32, 0)), "overlap");
  // Touching is fine, and so is a gap.
  const auto file = parse(GgufBuilder().tensor("x", {8}, GgmlType::F32).tensor("y", {8}, GgmlType::F32, 32)
                              .tensor("z", {8}, GgmlType::F32, 128));
  PC_CHECK_EQ(file->findTensor("z")->data[0], uint8_t{3});
}

PC_TEST(corrupt_fields_of_a_good_file_are_caught) {
  GgufBuilder::Layout layout;
  const std::vector<uint8_t> good = smallFile().build(&layout);
  // Tensor 'a.weight' (8-byte name) has 2 dims: n_dims at +0, dims at +4 and +12, type at +20, offset at +24.
  struct Corruption {
    size_t position;
    uint64_t value;
    size_t width;
    const char* needle;
  };
  const Corruption corruptions[] = {
      {tensorField(layout, 0, 8, 0), 9, 4, "has 9 dimensions"},
      {tensorField(layout, 0, 8, 4), 0, 8, "has dimension 0 = 0"},
      {tensorField(layout, 0, 8, 12), uint64_t{1} << 63, 8, "has dimension 1 = 9223372036854775808"},
      {tensorField(layout, 0, 8, 20), 99, 4, "unknown ggml type id 99"},
      {tensorField(layout, 0, 8, 24), 8, 8, "not a multiple of the alignment"},
      {tensorField(layout, 0, 8, 24), 32, 8, "overlap"},
      {tensorField(layout, 0, 8, 24), uint64_t{1} << 31, 8, "past the end"},
      {tensorField(layout, 0, 8, 24), UINT64_MAX - 31, 8, "past the end"},
      {layout.metadata_entry_starts[0] + 8 + 20, 77, 4, "metadata key 'general.architecture': unknown value type 77"},
  };
  for (const Corruption& corruption : corruptions) {
    std::vector<uint8_t> bytes = good;
    std::memcpy(bytes.data() + corruption.position, &corruption.value, corruption.width);
    PC_CHECK_THROWS(parse(bytes), corruption.needle);
  }
}

PC_TEST(loads_the_real_model) {
  const std::string path = PC_SOURCE_DIR "/media/models/tiny-code-q8_0.gguf";
  const auto file = GgufFile::open(path);
  PC_CHECK_EQ(file->path(), path);
  PC_CHECK(file->version() == 2 || file->version() == 3);
  PC_CHECK_EQ(file->requireString("general.architecture"), std::string("llama"));
  PC_CHECK_EQ(file->requireInt("llama.block_count"), 6);
  PC_CHECK_EQ(file->requireInt("llama.embedding_length"), 192);
  PC_CHECK_EQ(file->getArray("tokenizer.ggml.tokens", GgufValueType::String)->items.size(), size_t{32016});
  PC_CHECK_EQ(file->getArray("tokenizer.ggml.scores", GgufValueType::F32)->items.size(), size_t{32016});
  PC_CHECK(file->tensors().size() >= 2 + 6 * 9);
  const GgufTensorInfo* embedding = file->findTensor("token_embd.weight");
  PC_CHECK(embedding->dims == (std::vector<int64_t>{192, 32016}));
  PC_CHECK(embedding->type() == GgmlType::Q8_0);
  PC_CHECK(file->findTensor("blk.5.attn_k.weight")->dims == (std::vector<int64_t>{192, 64}));
  for (const GgufTensorInfo& tensor : file->tensors()) {
    PC_CHECK(file->dataOffset() + tensor.offset + tensor.byte_size <= file->fileSize());
  }

  // The same bytes from memory parse identically.
  std::ifstream stream(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  const auto copy = GgufFile::fromBytes(std::move(bytes), "copy");
  PC_CHECK_EQ(copy->metadata().size(), file->metadata().size());
  PC_CHECK_EQ(copy->dataOffset(), file->dataOffset());
  PC_CHECK_EQ(std::memcmp(copy->findTensor("output_norm.weight")->data, file->findTensor("output_norm.weight")->data,
                          file->findTensor("output_norm.weight")->byte_size),
              0);
}

// A scratch directory removed with its files at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/gguf_test_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) testing::fail(__FILE__, __LINE__, "mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    for (const std::string& file : files_) ::unlink(file.c_str());
    ::rmdir(path_.c_str());
  }
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
    files_.push_back(file);
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

PC_TEST(maps_files_from_disk) {
  TempDir dir;
  const std::vector<uint8_t> bytes = smallFile().build();
  const std::string path = dir.write("small.gguf", bytes);
  {
    const auto file = GgufFile::open(path);
    PC_CHECK_EQ(file->fileSize(), uint64_t{bytes.size()});
    PC_CHECK_EQ(file->requireString("general.architecture"), std::string("llama"));
    PC_CHECK_EQ(file->findTensor("b.weight")->data[19], uint8_t{2});
    PC_CHECK_EQ(file->findTensor("b.weight")->data - file->findTensor("a.weight")->data, 224);
  }
  const std::string truncated = dir.write("truncated.gguf", std::vector<uint8_t>(bytes.begin(), bytes.end() - 5));
  PC_CHECK_THROWS(GgufFile::open(truncated), truncated + ": tensor 'b.weight' data");
  const std::string header_only = dir.write("header.gguf", std::vector<uint8_t>(bytes.begin(), bytes.begin() + 30));
  PC_CHECK_THROWS(GgufFile::open(header_only), header_only + ": the tensor count is 2, more than the 14 bytes left");
  const std::string empty = dir.write("empty.gguf", {});
  PC_CHECK_THROWS(GgufFile::open(empty), empty + ": not a GGUF file");
  PC_CHECK_THROWS(GgufFile::open(dir.path() + "/absent.gguf"), "absent.gguf: cannot open: No such file");
  PC_CHECK_THROWS(GgufFile::open(dir.path()), ": not a regular file");
}

}  // namespace
}  // namespace pc
