// Byte-level BPE training: count pre-tokenized words (GPT-2 split, bytes mapped to printable
// characters), then repeatedly merge the most frequent adjacent pair. Pair counts are updated
// incrementally through an index from pairs to the words containing them, and the best pair is
// taken from a heap with lazy invalidation. Ties go to the lexicographically smallest pair, so
// training is deterministic.
#include "basin/text/bpe_trainer.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/text/components.h"
#include "basin/text/tokenizer.h"
#include "basin/text/unicode.h"

#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace basin::text {
namespace {

constexpr std::size_t kFixedTokens = 4 + 256 + 1; // <s> <pad> </s> <unk>, bytes, <mask>

using Pair = std::pair<std::int32_t, std::int32_t>;
struct PairHash {
    std::size_t operator()(const Pair& p) const {
        return std::hash<std::uint64_t>()((std::uint64_t(std::uint32_t(p.first)) << 32) | std::uint32_t(p.second));
    }
};

} // namespace

BpeTrainResult train_byte_level_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options,
                                    const std::string& source) {
    BASIN_CHECK(options.vocab_size > kFixedTokens, "--vocab-size must exceed ", kFixedTokens,
                " (special tokens and the 256 bytes), got ", options.vocab_size);
    BpeTrainResult result;
    auto pre =
        make_pre_tokenizer({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}, "bpe trainer");
    std::unordered_map<std::string, std::uint64_t> counts;
    for (const std::string_view content : texts) {
        std::size_t start = 0;
        while (start < content.size()) {
            std::size_t end = content.find('\n', start);
            if (end == std::string::npos) end = content.size();
            if (end > start) {
                std::vector<std::u32string> pieces{utf8_decode(std::string_view(content).substr(start, end - start))};
                pre->split(pieces, true);
                for (const auto& p : pieces) {
                    ++counts[utf8_encode(p)];
                    ++result.words;
                }
            }
            start = end + 1;
        }
    }
    result.distinct_words = counts.size();

    // symbols: the 256 byte characters first, merged tokens appended
    std::vector<std::string> symbols;
    std::unordered_map<std::string, std::int32_t> symbol_id;
    for (char32_t c : bytes_to_unicode()) {
        symbol_id[utf8_encode(std::u32string(1, c))] = std::int32_t(symbols.size());
        symbols.push_back(utf8_encode(std::u32string(1, c)));
    }
    // words sorted for determinism
    std::vector<std::pair<std::string, std::uint64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());
    counts.clear();
    std::vector<std::vector<std::int32_t>> words;
    std::vector<std::uint64_t> freq;
    for (const auto& [word, count] : sorted) {
        std::vector<std::int32_t> w;
        for (char32_t c : utf8_decode(word))
            w.push_back(symbol_id.at(utf8_encode(std::u32string(1, c))));
        words.push_back(std::move(w));
        freq.push_back(count);
    }
    std::unordered_map<Pair, std::int64_t, PairHash> pair_count;
    std::unordered_map<Pair, std::unordered_set<std::uint32_t>, PairHash> where;
    for (std::uint32_t i = 0; i < words.size(); ++i)
        for (std::size_t k = 0; k + 1 < words[i].size(); ++k) {
            Pair p{words[i][k], words[i][k + 1]};
            pair_count[p] += std::int64_t(freq[i]);
            where[p].insert(i);
        }
    // heap entries: (count, pair) with the smaller merged string winning ties
    struct Entry {
        std::int64_t count;
        Pair pair;
    };
    auto worse = [&](const Entry& a, const Entry& b) {
        if (a.count != b.count) return a.count < b.count;
        const auto sa = symbols[std::size_t(a.pair.first)] + " " + symbols[std::size_t(a.pair.second)];
        const auto sb = symbols[std::size_t(b.pair.first)] + " " + symbols[std::size_t(b.pair.second)];
        return sa > sb;
    };
    std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
    for (const auto& [p, c] : pair_count)
        heap.push({c, p});

    const std::size_t wanted = options.vocab_size - kFixedTokens;
    std::vector<std::pair<std::string, std::string>> merges;
    // two pairs can merge into the same string, so count new tokens, not merges
    auto new_tokens = [&] { return symbols.size() - 256; };
    while (new_tokens() < wanted && !heap.empty()) {
        Entry top = heap.top();
        heap.pop();
        auto it = pair_count.find(top.pair);
        const std::int64_t current = it == pair_count.end() ? 0 : it->second;
        if (current != top.count) { // stale: re-queue with the current count
            if (current > 0) heap.push({current, top.pair});
            continue;
        }
        if (std::uint64_t(current) < options.min_frequency) break;
        const Pair pair = top.pair;
        const std::string merged = symbols[std::size_t(pair.first)] + symbols[std::size_t(pair.second)];
        std::int32_t new_id;
        auto found = symbol_id.find(merged);
        if (found != symbol_id.end()) {
            new_id = found->second;
        } else {
            new_id = std::int32_t(symbols.size());
            symbols.push_back(merged);
            symbol_id[merged] = new_id;
        }
        merges.emplace_back(symbols[std::size_t(pair.first)], symbols[std::size_t(pair.second)]);
        std::vector<std::uint32_t> affected(where[pair].begin(), where[pair].end());
        std::sort(affected.begin(), affected.end());
        std::unordered_set<Pair, PairHash> touched;
        for (auto i : affected) {
            auto& w = words[i];
            const auto f = std::int64_t(freq[i]);
            for (std::size_t k = 0; k + 1 < w.size(); ++k) { // remove this word's old pairs
                Pair p{w[k], w[k + 1]};
                pair_count[p] -= f;
                touched.insert(p);
            }
            std::vector<std::int32_t> next;
            for (std::size_t k = 0; k < w.size(); ++k) {
                if (k + 1 < w.size() && w[k] == pair.first && w[k + 1] == pair.second) {
                    next.push_back(new_id);
                    ++k;
                } else {
                    next.push_back(w[k]);
                }
            }
            for (std::size_t k = 0; k + 1 < w.size(); ++k)
                where[{w[k], w[k + 1]}].erase(i);
            w.swap(next);
            for (std::size_t k = 0; k + 1 < w.size(); ++k) { // add the new pairs
                Pair p{w[k], w[k + 1]};
                pair_count[p] += f;
                where[p].insert(i);
                touched.insert(p);
            }
        }
        pair_count.erase(pair);
        where.erase(pair);
        for (const auto& p : touched) {
            auto c = pair_count.find(p);
            if (c != pair_count.end() && c->second > 0) heap.push({c->second, p});
        }
    }
    BASIN_CHECK(new_tokens() == wanted, source, ": corpus too small for --vocab-size ", options.vocab_size,
                ": it supports at most ", new_tokens() + kFixedTokens, " tokens with pairs seen at least ",
                options.min_frequency, " times (", result.words, " words, ", result.distinct_words, " distinct)");
    result.merges = merges.size();
    result.tokenizer = byte_level_bpe_json(merges);
    return result;
}

} // namespace basin::text
