// The dataset readers: the first byte picks JSONL, CSV or TSV, the rest is the file.
#include "basin/data/dataset.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const char* names[] = {"data.jsonl", "data.csv", "data.tsv"};
    const auto path = basin::fuzz::write(names[data[0] % 3], data + 1, size - 1);
    try {
        const auto d = basin::read_dataset(path);
        (void)d.label_names();
    } catch (const std::exception&) {
    }
    return 0;
}
