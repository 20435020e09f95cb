// Fuzzes the request parsers of edgeq serve: the first byte picks the endpoint, the rest is the
// request body. Every input either parses or is an ApiError (a 400 for the client); the error
// JSON and the parsed request must serialise. Seeds are in tests/fuzz/corpus/server-request/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "edgeq/server/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    const edgeq::SamplingParams defaults;
    try {
        const nlohmann::json json = edgeq::server::parse_body(body);
        switch (data[0] % 5) {
            case 0: {
                const auto r = edgeq::server::parse_chat_request(json, defaults);
                for (const auto& m : r.messages) (void)edgeq::server::dump({{m.role, m.content}});
                break;
            }
            case 1: {
                const auto r = edgeq::server::parse_completion_request(json, defaults);
                (void)edgeq::server::dump({{"prompt", r.prompt}, {"stops", r.stops}});
                break;
            }
            case 2:
                (void)edgeq::server::parse_embedding_request(json);
                break;
            case 3:
                (void)edgeq::server::parse_tokenize_request(json);
                break;
            default:
                (void)edgeq::server::parse_detokenize_request(json, 1000);
                break;
        }
    } catch (const edgeq::server::ApiError& e) {
        (void)edgeq::server::dump(edgeq::server::error_body(e));
    }
    return 0;
}
