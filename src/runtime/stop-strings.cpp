#include "edgeq/runtime/stop-strings.h"

#include <algorithm>

namespace edgeq {

StopStrings::StopStrings(std::vector<std::string> stops) {
    for (std::string& s : stops) {
        if (!s.empty()) stops_.push_back(std::move(s));
    }
}

std::string StopStrings::push(std::string_view text) {
    if (stopped_) return {};
    held_.append(text);
    // The stop string that is complete first wins (the smallest end; at equal ends the
    // longer one), so the result does not depend on how the text was split into pieces.
    size_t first = std::string::npos;
    size_t first_end = std::string::npos;
    for (const std::string& s : stops_) {
        const size_t at = held_.find(s);
        if (at == std::string::npos) continue;
        const size_t end = at + s.size();
        if (end < first_end || (end == first_end && at < first)) first = at, first_end = end;
    }
    if (first != std::string::npos) {
        stopped_ = true;
        std::string out = held_.substr(0, first);
        held_.clear();
        return out;
    }
    // Keep the longest tail of held_ that is a proper prefix of some stop string.
    size_t keep = 0;
    for (const std::string& s : stops_) {
        for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
            if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
                keep = n;
                break;
            }
        }
    }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
}

std::string StopStrings::flush() {
    std::string out;
    out.swap(held_);
    return out;
}

}  // namespace edgeq
