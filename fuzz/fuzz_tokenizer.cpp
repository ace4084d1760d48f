// tokenizer.json and tokenization: the input is a tokenizer JSON, a 0 byte, and text to encode
// (alone and as a pair).
#include "basin/text/tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto* end = data + size;
    const auto* split = std::find(data, end, std::uint8_t(0));
    const auto json = nlohmann::json::parse(data, split, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) return 0;
    try {
        const auto tokenizer = basin::text::Tokenizer::from_json(json, "tokenizer.json");
        if (split == end) return 0;
        const std::string_view text(reinterpret_cast<const char*>(split + 1), std::size_t(end - split - 1));
        (void)tokenizer.encode(text);
        const auto half = text.size() / 2;
        (void)tokenizer.encode(text.substr(0, half), text.substr(half));
    } catch (const std::exception&) {
    }
    return 0;
}
