// libFuzzer target: GGUF bytes -> Tokenizer::from_metadata -> encode / decode. Any input must
// either build a tokenizer or raise edgeq::Error; whatever builds must encode a short text
// (with and without special tokens) into ids inside the vocabulary and decode them again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "edgeq/core/error.h"
#include "edgeq/formats/gguf.h"
#include "edgeq/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const edgeq::GgufFile file = edgeq::GgufFile::parse({data, size}, "fuzz.gguf");
        const edgeq::Tokenizer tok = edgeq::Tokenizer::from_metadata(file.metadata());
        for (const bool special : {false, true}) {
            edgeq::StreamDecoder decoder(tok, special);
            for (const int32_t id :
                 tok.encode("Hello <s> wörld 123 \xF0\x9F\x98\x80\n", special, special)) {
                if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
                (void)decoder.push(id);
                (void)tok.token_text(id);
                (void)tok.is_end_of_generation(id);
            }
            (void)decoder.flush();
        }
    } catch (const edgeq::Error&) {
    }
    return 0;
}
