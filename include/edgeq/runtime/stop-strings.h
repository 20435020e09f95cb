// Stop strings for streamed generation: text is passed through as it arrives, except the
// tail that could still be the start of a stop string, which is held back until the next
// piece decides it. When a stop string is complete, the text before it is released and the
// rest (the stop string included) is dropped. The first stop string to be complete wins (at
// the same end, the longer one), whatever the split of the text into pieces.
//
//   StopStrings stops({"\n\n", "User:"});
//   std::string shown = stops.push(piece);   // what may be printed now
//   if (stops.stopped()) break;
//   shown = stops.flush();                   // at the end: whatever was held back
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace edgeq {

class StopStrings {
  public:
    explicit StopStrings(std::vector<std::string> stops);

    // Appends generated text; returns the part that can no longer become a stop string.
    // After a stop string is found, returns the text before it and ignores further input.
    std::string push(std::string_view text);
    bool stopped() const { return stopped_; }
    // The text held back (none after a stop).
    std::string flush();

  private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
};

}  // namespace edgeq
