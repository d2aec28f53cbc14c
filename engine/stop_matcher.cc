#include "engine/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace pc {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

StopMatcher::Step StopMatcher::push(std::string_view piece) {
  pending_.append(piece);
  Step step;
  // The earliest complete stop string wins.
  size_t stop_at = std::string::npos;
  for (const std::string& stop : stops_) stop_at = std::min(stop_at, pending_.find(stop));
  if (stop_at != std::string::npos) {
    step.released = pending_.substr(0, stop_at);
    step.stopped = true;
    pending_.clear();
    return step;
  }
  // Hold back the longest tail of the pending text that could still grow into a stop string.
  size_t held = 0;
  for (const std::string& stop : stops_) {
    for (size_t length = std::min(stop.size() - 1, pending_.size()); length > held; --length) {
      if (pending_.compare(pending_.size() - length, length, stop, 0, length) == 0) {
        held = length;
        break;
      }
    }
  }
  step.released = pending_.substr(0, pending_.size() - held);
  pending_.erase(0, pending_.size() - held);
  return step;
}

std::string StopMatcher::flush() { return std::exchange(pending_, std::string()); }

}  // namespace pc
