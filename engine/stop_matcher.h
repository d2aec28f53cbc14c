// Stop strings over streamed text: text is released only once it cannot be the beginning of a stop string, so a
// stop string split across tokens is never shown, and generation stops with the text before it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pc {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  struct Step {
    std::string released;  // text safe to show now
    bool stopped = false;  // a stop string completed; `released` ends right before it
  };
  Step push(std::string_view piece);
  std::string flush();  // at the end of generation: whatever was held back

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace pc
