// The experiment spec (TOML), in a folder where base/ and data/ exist so that checks go deep.
#include "basin/experiment/spec.h"
#include "fuzz_util.h"

#include <filesystem>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool folders = [] {
        std::filesystem::create_directories(basin::fuzz::scratch() / "base");
        std::filesystem::create_directories(basin::fuzz::scratch() / "data" / "a");
        return true;
    }();
    (void)folders;
    const auto path = basin::fuzz::write("experiment.toml", data, size);
    try {
        (void)basin::read_experiment(path);
    } catch (const std::exception&) {
    }
    return 0;
}
