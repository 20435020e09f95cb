// The chat page served at /: one HTML document with its script inline (no build step). It
// streams replies from /v1/chat/completions and shows the model's name and the speed.
// With ?test=1 it sends "Say hello." on load and marks the page when the reply is complete
// (id "status" reads "done"), for the headless-browser test.
#pragma once

#include <string_view>

namespace edgeq::server {

std::string_view chat_page_html();

}  // namespace edgeq::server
