#include "engine/testing/check.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>
#include <vector>

namespace pc::testing {
namespace {

struct TestCase {
  const char* name;
  std::function<void()> body;
};

std::vector<TestCase>& registry() {
  static std::vector<TestCase> cases;
  return cases;
}

std::string g_data_dir;

}  // namespace

void registerTest(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }

void fail(const char* file, int line, const std::string& message) {
  throw CheckFailure{std::string(file) + ":" + std::to_string(line) + ": " + message};
}

std::string dataDir() { return g_data_dir; }

}  // namespace pc::testing

// Usage: <test> [--data DIR] [FILTER]
int main(int argc, char** argv) {
  using namespace pc::testing;
  std::string filter;
  if (const char* env = std::getenv("PC_TEST_DATA")) g_data_dir = env;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--data" && i + 1 < argc) {
      g_data_dir = argv[++i];
    } else {
      filter = arg;
    }
  }
  int passed = 0, failed = 0;
  for (const TestCase& test : registry()) {
    if (!filter.empty() && std::string(test.name).find(filter) == std::string::npos) continue;
    try {
      test.body();
      ++passed;
      std::printf("ok   %s\n", test.name);
    } catch (const CheckFailure& failure) {
      ++failed;
      std::printf("FAIL %s\n     %s\n", test.name, failure.message.c_str());
    } catch (const std::exception& e) {
      ++failed;
      std::printf("FAIL %s\n     unexpected exception: %s\n", test.name, e.what());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
