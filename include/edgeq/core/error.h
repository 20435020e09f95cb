// edgeq::Error: the one exception type for bad input and failed operations.
//
// An Error says what failed, where (file, offset, tensor, field) and what was expected, in
// one line. It is thrown where the problem is detected and caught at the CLI, server and
// Python boundaries. Conditions that only a bug can cause are asserts, not Errors.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace edgeq {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws an Error whose message is formatted with fmt.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace edgeq
