#include "basin/data/batching.h"

#include "basin/core/error.h"

#include <algorithm>
#include <exception>
#include <numeric>
#include <thread>

namespace basin {

TokenizedExamples tokenize_examples(const Dataset& data, const text::Tokenizer& tokenizer, std::size_t max_length,
                                    int threads) {
    text::TruncationOptions truncation = tokenizer.truncation();
    truncation.max_length = max_length;
    TokenizedExamples out;
    out.encodings.resize(data.examples.size());
    const std::size_t n = data.examples.size();
    std::size_t workers = threads > 0 ? std::size_t(threads) : std::max(1u, std::thread::hardware_concurrency());
    workers = std::min(workers, std::max<std::size_t>(1, n / 64));
    std::vector<std::exception_ptr> errors(workers);
    auto work = [&](std::size_t w) {
        try {
            for (std::size_t i = w; i < n; i += workers) {
                const auto& ex = data.examples[i];
                try {
                    const auto pair = ex.text_pair ? std::optional<std::string_view>(*ex.text_pair) : std::nullopt;
                    out.encodings[i] = tokenizer.encode(ex.text, pair, /*add_special_tokens=*/true, truncation);
                } catch (const Error& e) {
                    fail(data.path.string(), ":", ex.line, ": ", e.what());
                }
            }
        } catch (...) {
            errors[w] = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    for (std::size_t w = 1; w < workers; ++w)
        pool.emplace_back(work, w);
    work(0);
    for (auto& t : pool)
        t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    for (const auto& e : out.encodings)
        out.total_tokens += e.size();
    return out;
}

std::vector<std::vector<std::size_t>> make_batches(const std::vector<text::Encoding>& encodings, std::size_t batch_size,
                                                   bool sort_by_length) {
    BASIN_CHECK(batch_size > 0, "batching: batch size must be positive");
    std::vector<std::size_t> order(encodings.size());
    std::iota(order.begin(), order.end(), 0);
    if (sort_by_length)
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t a, std::size_t b) { return encodings[a].size() < encodings[b].size(); });
    std::vector<std::vector<std::size_t>> batches;
    for (std::size_t i = 0; i < order.size(); i += batch_size)
        batches.emplace_back(order.begin() + std::ptrdiff_t(i),
                             order.begin() + std::ptrdiff_t(std::min(order.size(), i + batch_size)));
    return batches;
}

} // namespace basin
