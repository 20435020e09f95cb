// TEMPORARY stub so that the engine links on the helper-eng branch, where the tokenizer is not
// implemented yet. Delete at merge: the tokenizer helper's files define these.
#include "edgeq/core/error.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq {

struct Tokenizer::Impl {};

Tokenizer Tokenizer::from_metadata(const GgufMetadata&) {
    fail("tokenizer: not implemented on this branch");
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

}  // namespace edgeq
