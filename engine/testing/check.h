// A deliberately small test harness for the engine's native tests: every `*_test.cc` beside an engine module
// defines PC_TEST cases; check.cc's main runs them all (or those whose name contains argv[1]) and ends with the
// line "N passed, N failed" that CI reads. A failed check reports file:line and the values, then ends its case.
#pragma once

#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace pc::testing {

struct CheckFailure {
  std::string message;
};

void registerTest(const char* name, std::function<void()> body);

struct TestRegistrar {
  TestRegistrar(const char* name, std::function<void()> body) { registerTest(name, std::move(body)); }
};

[[noreturn]] void fail(const char* file, int line, const std::string& message);

// Test data directory (argv or PC_TEST_DATA), for tests that read files written by the TypeScript suite.
std::string dataDir();

template <typename T, typename = void>
struct IsSequence : std::false_type {};
template <typename T>
struct IsSequence<T, std::void_t<decltype(std::declval<const T&>().begin()), typename T::value_type>>
    : std::bool_constant<!std::is_convertible_v<T, std::string_view>> {};

template <typename T>
std::string show(const T& value) {
  std::ostringstream out;
  if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
    out << static_cast<int>(value);
  } else if constexpr (IsSequence<T>::value) {
    // Sequences print as [a, b, ...], the first 32 elements.
    out << "[";
    size_t index = 0;
    for (const auto& item : value) {
      if (index == 32) {
        out << ", ...";
        break;
      }
      out << (index++ ? ", " : "") << show(item);
    }
    out << "] (" << index << (index == 32 ? "+" : "") << " items)";
  } else {
    out << value;
  }
  return out.str();
}

}  // namespace pc::testing

#define PC_TEST_CONCAT_(a, b) a##b
#define PC_TEST_CONCAT(a, b) PC_TEST_CONCAT_(a, b)

#define PC_TEST(name)                                                                             \
  static void name();                                                                             \
  static ::pc::testing::TestRegistrar PC_TEST_CONCAT(name, _registrar)(#name, &name);             \
  static void name()

#define PC_CHECK(cond)                                                                            \
  do {                                                                                            \
    if (!(cond)) ::pc::testing::fail(__FILE__, __LINE__, "check failed: " #cond);                 \
  } while (0)

#define PC_CHECK_EQ(a, b)                                                                         \
  do {                                                                                            \
    /* copies: a reference could dangle into a temporary of (a), e.g. *optional() */             \
    const auto pc_a_ = (a);                                                                       \
    const auto pc_b_ = (b);                                                                       \
    if (!(pc_a_ == pc_b_))                                                                        \
      ::pc::testing::fail(__FILE__, __LINE__,                                                     \
                          std::string(#a " == " #b ": ") + ::pc::testing::show(pc_a_) + " vs " +  \
                              ::pc::testing::show(pc_b_));                                        \
  } while (0)

// Expects `expr` to throw an exception derived from std::exception whose what() contains `needle`.
#define PC_CHECK_THROWS(expr, needle)                                                             \
  do {                                                                                            \
    bool pc_threw_ = false;                                                                       \
    try {                                                                                         \
      (void)(expr);                                                                               \
    } catch (const std::exception& pc_e_) {                                                       \
      pc_threw_ = true;                                                                           \
      if (std::string_view(pc_e_.what()).find(needle) == std::string_view::npos)                  \
        ::pc::testing::fail(__FILE__, __LINE__,                                                   \
                            std::string("error of " #expr " lacks \"") + (needle) +               \
                                "\": " + pc_e_.what());                                           \
    }                                                                                             \
    if (!pc_threw_) ::pc::testing::fail(__FILE__, __LINE__, "expected " #expr " to throw");       \
  } while (0)
