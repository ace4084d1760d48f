// config.json: JSON, then the Hugging Face config, then the resolved encoder config.
#include "basin/models/config.h"

#include <nlohmann/json.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) return 0;
    try {
        const auto hf = basin::HfConfig::from_json(json, "config.json");
        (void)basin::EncoderConfig::resolve(hf, "config.json");
    } catch (const std::exception&) {
    }
    return 0;
}
