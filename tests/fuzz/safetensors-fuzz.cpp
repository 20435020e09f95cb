// Fuzzes the safetensors reader: any input either parses or is refused with an edgeq::Error;
// every tensor of a parsed file lies inside the input and converts to float. Seeds are in
// tests/fuzz/corpus/safetensors/ (generate.py writes them).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/formats/safetensors.h"

namespace {

void check(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> bytes(data, size);
    try {
        const edgeq::SafetensorsFile file = edgeq::SafetensorsFile::parse(bytes, "fuzz");
        uint64_t previous = 0;
        for (const edgeq::SafetensorsTensor& t : file.tensors()) {
            // What the reader promises, checked here so that a broken promise is a crash.
            if (t.offset < file.data_offset() || t.offset > size || t.n_bytes > size - t.offset ||
                t.data != data + t.offset || t.offset < previous ||
                t.n_bytes !=
                    static_cast<uint64_t>(t.n_elements) * edgeq::safetensors_dtype_size(t.dtype) ||
                file.find_tensor(t.name) != &t) {
                std::abort();
            }
            previous = t.offset;
            // The first and last few elements, touching both ends of the tensor's bytes.
            float values[4];
            const int64_t n = t.n_elements < 4 ? t.n_elements : 4;
            edgeq::to_float(t, 0, n, values);
            edgeq::to_float(t, t.n_elements - n, n, values);
            if (t.dtype == edgeq::SafetensorsDType::F16 ||
                t.dtype == edgeq::SafetensorsDType::BF16) {
                try {
                    const std::span<const uint16_t> words = edgeq::half_words(t);
                    if (!words.empty() && words.back() == 0xffff) values[0] = 0.0f;
                } catch (const edgeq::Error&) {
                    // unaligned data: refused by design
                }
            }
        }
        for (const auto& [key, value] : file.metadata()) {
            if (file.find_metadata(key) != &value) std::abort();
        }
    } catch (const edgeq::Error&) {
        // malformed input, refused
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    check(data, size);
    // Mutations rarely keep the 8-byte length in step with the JSON after it, so an input
    // that starts with '{' is also read as "header NUL data" with the length prepended, which
    // lets the fuzzer explore the header's meaning rather than its framing.
    if (size > 0 && data[0] == '{') {
        const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
        const size_t n_header = nul == nullptr ? size : static_cast<size_t>(nul - data);
        const size_t n_data = nul == nullptr ? 0 : size - n_header - 1;
        std::vector<uint8_t> file(8 + n_header + n_data);
        for (size_t i = 0; i < 8; ++i)
            file[i] = static_cast<uint8_t>(uint64_t{n_header} >> (8 * i));
        std::memcpy(file.data() + 8, data, n_header);
        if (n_data > 0) std::memcpy(file.data() + 8 + n_header, nul + 1, n_data);
        check(file.data(), file.size());
    }
    return 0;
}
