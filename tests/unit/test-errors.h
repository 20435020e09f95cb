// expect_error: a call must throw an edgeq::Error whose message contains a fragment.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "edgeq/core/error.h"

namespace edgeq::testing {

template <typename F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no Error; expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

}  // namespace edgeq::testing
