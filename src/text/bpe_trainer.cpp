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
#include <optional>
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

// The pre-tokenized words of every non-empty line of every text, counted.
std::unordered_map<std::string, std::uint64_t> count_words(const std::vector<std::string_view>& texts,
                                                           BpeTrainResult& result) {
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
    return counts;
}

// Symbols: the 256 byte characters first, merged tokens appended.
struct Symbols {
    std::vector<std::string> text;
    std::unordered_map<std::string, std::int32_t> id;

    Symbols() {
        for (char32_t c : bytes_to_unicode())
            add(utf8_encode(std::u32string(1, c)));
    }
    // the id of a symbol, added when new (two pairs can merge into the same string)
    std::int32_t add(const std::string& s) {
        const auto [it, inserted] = id.emplace(s, std::int32_t(text.size()));
        if (inserted) text.push_back(s);
        return it->second;
    }
    std::size_t merged_tokens() const { return text.size() - 256; }
};

// The distinct words as symbol ids, sorted (for determinism), with their counts.
struct Words {
    std::vector<std::vector<std::int32_t>> ids;
    std::vector<std::uint64_t> freq;
};

Words encode_words(std::unordered_map<std::string, std::uint64_t> counts, const Symbols& symbols) {
    std::vector<std::pair<std::string, std::uint64_t>> sorted(counts.begin(), counts.end());
    counts.clear();
    std::sort(sorted.begin(), sorted.end());
    Words words;
    for (const auto& [word, count] : sorted) {
        std::vector<std::int32_t> w;
        for (char32_t c : utf8_decode(word))
            w.push_back(symbols.id.at(utf8_encode(std::u32string(1, c))));
        words.ids.push_back(std::move(w));
        words.freq.push_back(count);
    }
    return words;
}

// Counts of adjacent pairs over the words, with the words holding each pair, and a heap of
// (count, pair) with lazy invalidation: the smaller merged string wins ties.
class PairCounts {
  public:
    PairCounts(const Words& words, const Symbols& symbols) : heap_(Worse{&symbols}) {
        for (std::uint32_t i = 0; i < words.ids.size(); ++i)
            for (std::size_t k = 0; k + 1 < words.ids[i].size(); ++k) {
                Pair p{words.ids[i][k], words.ids[i][k + 1]};
                count_[p] += std::int64_t(words.freq[i]);
                where_[p].insert(i);
            }
        for (const auto& [p, c] : count_)
            heap_.push({c, p});
    }

    struct Best {
        Pair pair;
        std::int64_t count;
    };
    // the most frequent pair; none when no pair is left
    std::optional<Best> pop_best() {
        while (!heap_.empty()) {
            const Entry top = heap_.top();
            heap_.pop();
            const auto it = count_.find(top.pair);
            const std::int64_t current = it == count_.end() ? 0 : it->second;
            if (current == top.count) return Best{top.pair, current};
            if (current > 0) heap_.push({current, top.pair}); // stale: re-queue with the current count
        }
        return std::nullopt;
    }

    // Replaces every occurrence of pair in the words holding it by new_id, updating the counts.
    void merge(const Pair& pair, std::int32_t new_id, Words& words) {
        std::vector<std::uint32_t> affected(where_[pair].begin(), where_[pair].end());
        std::sort(affected.begin(), affected.end());
        std::unordered_set<Pair, PairHash> touched;
        for (auto i : affected) {
            auto& w = words.ids[i];
            const auto f = std::int64_t(words.freq[i]);
            for (std::size_t k = 0; k + 1 < w.size(); ++k) { // remove this word's old pairs
                Pair p{w[k], w[k + 1]};
                count_[p] -= f;
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
                where_[{w[k], w[k + 1]}].erase(i);
            w.swap(next);
            for (std::size_t k = 0; k + 1 < w.size(); ++k) { // add the new pairs
                Pair p{w[k], w[k + 1]};
                count_[p] += f;
                where_[p].insert(i);
                touched.insert(p);
            }
        }
        count_.erase(pair);
        where_.erase(pair);
        for (const auto& p : touched) {
            auto c = count_.find(p);
            if (c != count_.end() && c->second > 0) heap_.push({c->second, p});
        }
    }

  private:
    struct Entry {
        std::int64_t count;
        Pair pair;
    };
    struct Worse {
        const Symbols* symbols;
        bool operator()(const Entry& a, const Entry& b) const {
            if (a.count != b.count) return a.count < b.count;
            const auto& t = symbols->text;
            return t[std::size_t(a.pair.first)] + " " + t[std::size_t(a.pair.second)] >
                   t[std::size_t(b.pair.first)] + " " + t[std::size_t(b.pair.second)];
        }
    };
    std::unordered_map<Pair, std::int64_t, PairHash> count_;
    std::unordered_map<Pair, std::unordered_set<std::uint32_t>, PairHash> where_;
    std::priority_queue<Entry, std::vector<Entry>, Worse> heap_;
};

} // namespace

BpeTrainResult train_byte_level_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options,
                                    const std::string& source) {
    BASIN_CHECK(options.vocab_size > kFixedTokens, "--vocab-size must exceed ", kFixedTokens,
                " (special tokens and the 256 bytes), got ", options.vocab_size);
    BpeTrainResult result;
    Symbols symbols;
    Words words = encode_words(count_words(texts, result), symbols);
    PairCounts pairs(words, symbols);
    const std::size_t wanted = options.vocab_size - kFixedTokens;
    std::vector<std::pair<std::string, std::string>> merges;
    // two pairs can merge into the same string, so count new tokens, not merges
    while (symbols.merged_tokens() < wanted) {
        const auto best = pairs.pop_best();
        if (!best || std::uint64_t(best->count) < options.min_frequency) break;
        const Pair pair = best->pair;
        const std::string left = symbols.text[std::size_t(pair.first)], right = symbols.text[std::size_t(pair.second)];
        const std::int32_t new_id = symbols.add(left + right);
        merges.emplace_back(left, right);
        pairs.merge(pair, new_id, words);
    }
    BASIN_CHECK(symbols.merged_tokens() == wanted, source, ": corpus too small for --vocab-size ", options.vocab_size,
                ": it supports at most ", symbols.merged_tokens() + kFixedTokens, " tokens with pairs seen at least ",
                options.min_frequency, " times (", result.words, " words, ", result.distinct_words, " distinct)");
    result.merges = merges.size();
    result.tokenizer = byte_level_bpe_json(merges);
    return result;
}

} // namespace basin::text
