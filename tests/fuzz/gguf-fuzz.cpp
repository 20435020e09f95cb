// libFuzzer target: the GGUF reader on arbitrary bytes. Any input must either parse or raise
// edgeq::Error; the sanitizers catch everything else. Parsed tensors are read back as floats
// (first blocks only) to exercise the converters on damaged data too.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/formats/gguf.h"
#include "edgeq/quant/quantize.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const edgeq::GgufFile file = edgeq::GgufFile::parse({data, size}, "fuzz.gguf");
        for (const auto& [key, value] : file.metadata()) (void)value.summary(4);
        std::vector<float> floats;
        for (const edgeq::GgufTensorInfo& t : file.tensors()) {
            if (t.shape.empty() || !edgeq::can_dequantize(t.type)) continue;
            const int64_t block = edgeq::dtype(t.type).block_size;
            const int64_t n = std::min<int64_t>(t.n_elements(), 4 * block) / block * block;
            floats.resize(static_cast<size_t>(n));
            edgeq::to_float(t.type, file.tensor_data(t), floats.data(), n);
        }
    } catch (const edgeq::Error&) {
    }
    return 0;
}
