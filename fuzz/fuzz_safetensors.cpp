// The safetensors reader: header length, JSON header, offsets, dtypes; then every tensor read.
#include "basin/io/safetensors.h"
#include "fuzz_util.h"

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = basin::fuzz::write("model.safetensors", data, size);
    try {
        basin::SafetensorsFile file(path);
        std::vector<float> values;
        for (const auto& t : file.tensors()) {
            if (!basin::is_floating(t.dtype)) continue;
            values.resize(std::size_t(t.numel()));
            basin::convert_to_f32(t.dtype, file.data(t), values.data(), values.size());
        }
    } catch (const std::exception&) { // a clear error is the expected answer to bad input
    }
    return 0;
}
