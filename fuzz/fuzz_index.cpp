// The sharded-checkpoint index (model.safetensors.index.json) and the shards it names.
#include "basin/io/checkpoint.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = basin::fuzz::write("model.safetensors.index.json", data, size);
    try {
        basin::CheckpointTensors tensors(path);
        for (const auto& name : tensors.names())
            (void)tensors.find(name);
    } catch (const std::exception&) {
    }
    return 0;
}
