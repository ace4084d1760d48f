// Token models: WordPiece, BPE (byte-level or not) and Unigram, with Hugging Face semantics.
#include "basin/core/error.h"
#include "basin/core/json_value.h"
#include "basin/text/components.h"
#include "basin/text/unicode.h"

#include <cmath>
#include <limits>
#include <mutex>
#include <queue>
#include <unordered_map>

namespace basin::text {
namespace {

using nlohmann::json;

class Vocab {
  public:
    void add(const std::string& token, std::int32_t id, const std::string& where) {
        BASIN_CHECK(id >= 0, where, ": token '", token, "' has negative id ", id);
        to_id_[token] = id;
        if (std::size_t(id) >= to_token_.size()) to_token_.resize(std::size_t(id) + 1);
        to_token_[std::size_t(id)] = token;
    }
    std::int32_t id(const std::string& token) const {
        auto it = to_id_.find(token);
        return it == to_id_.end() ? -1 : it->second;
    }
    std::string token(std::int32_t id) const {
        return id >= 0 && std::size_t(id) < to_token_.size() ? to_token_[std::size_t(id)] : "";
    }
    std::size_t size() const { return to_id_.size(); }
    json to_json() const {
        json j = json::object();
        for (std::size_t i = 0; i < to_token_.size(); ++i)
            if (!to_token_[i].empty() || to_id_.count("")) j[to_token_[i]] = i;
        return j;
    }

  private:
    std::unordered_map<std::string, std::int32_t> to_id_;
    std::vector<std::string> to_token_;
};

Vocab read_vocab_object(const json& vocab, const std::string& where) {
    BASIN_CHECK(vocab.is_object(), where, ": 'vocab' must be an object of token -> id");
    Vocab v;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        BASIN_CHECK(it.value().is_number_integer(), where, ": vocab['", it.key(), "'] must be an integer id");
        v.add(it.key(), json_integer<std::int32_t>(it.value(), where + ": vocab['" + it.key() + "']"), where);
    }
    return v;
}

std::string optional_string(const json& spec, const char* key) {
    auto it = spec.find(key);
    return it == spec.end() || it->is_null() ? std::string() : it->get<std::string>();
}

class WordPiece : public TokenModel {
  public:
    WordPiece(const json& spec, const std::string& where) {
        vocab_ = read_vocab_object(spec.at("vocab"), where);
        unk_ = spec.value("unk_token", std::string("[UNK]"));
        prefix_ = spec.value("continuing_subword_prefix", std::string("##"));
        max_chars_ = spec.value("max_input_chars_per_word", std::size_t(100));
        unk_id_ = vocab_.id(unk_);
        BASIN_CHECK(unk_id_ >= 0, where, ": WordPiece unk_token '", unk_, "' is not in the vocab");
    }

    void tokenize(const std::u32string& piece, std::vector<Token>& out) const override {
        if (piece.size() > max_chars_) {
            out.push_back({unk_id_, unk_});
            return;
        }
        std::vector<Token> pieces;
        std::size_t start = 0;
        while (start < piece.size()) {
            std::size_t end = piece.size();
            std::int32_t found = -1;
            std::string found_text;
            while (start < end) {
                std::string candidate = utf8_encode(std::u32string_view(piece).substr(start, end - start));
                if (start > 0) candidate = prefix_ + candidate;
                std::int32_t id = vocab_.id(candidate);
                if (id >= 0) {
                    found = id;
                    found_text = std::move(candidate);
                    break;
                }
                --end;
            }
            if (found < 0) {
                out.push_back({unk_id_, unk_});
                return;
            }
            pieces.push_back({found, std::move(found_text)});
            start = end;
        }
        out.insert(out.end(), pieces.begin(), pieces.end());
    }

    std::int32_t token_to_id(const std::string& t) const override { return vocab_.id(t); }
    std::string id_to_token(std::int32_t id) const override { return vocab_.token(id); }
    std::size_t vocab_size() const override { return vocab_.size(); }
    std::string type() const override { return "WordPiece"; }
    json to_json() const override {
        return {{"type", "WordPiece"},
                {"unk_token", unk_},
                {"continuing_subword_prefix", prefix_},
                {"max_input_chars_per_word", max_chars_},
                {"vocab", vocab_.to_json()}};
    }

  private:
    Vocab vocab_;
    std::string unk_, prefix_;
    std::size_t max_chars_ = 100;
    std::int32_t unk_id_ = -1;
};

class Bpe : public TokenModel {
  public:
    Bpe(const json& spec, const std::string& where) {
        vocab_ = read_vocab_object(spec.at("vocab"), where);
        unk_ = optional_string(spec, "unk_token");
        prefix_ = optional_string(spec, "continuing_subword_prefix");
        suffix_ = optional_string(spec, "end_of_word_suffix");
        fuse_unk_ = spec.value("fuse_unk", false);
        byte_fallback_ = spec.value("byte_fallback", false);
        ignore_merges_ = spec.value("ignore_merges", false);
        const auto& merges = spec.at("merges");
        BASIN_CHECK(merges.is_array(), where, ": 'merges' must be an array");
        std::int32_t rank = 0;
        for (const auto& m : merges) {
            std::string left, right;
            if (m.is_string()) {
                const std::string s = m.get<std::string>();
                auto space = s.find(' ');
                BASIN_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, where,
                            ": merge ", rank, " '", s, "' must be two tokens separated by one space");
                left = s.substr(0, space);
                right = s.substr(space + 1);
            } else {
                BASIN_CHECK(m.is_array() && m.size() == 2, where, ": merge ", rank,
                            " must be \"a b\" or [\"a\", \"b\"]");
                left = m[0].get<std::string>();
                right = m[1].get<std::string>();
            }
            std::int32_t a = vocab_.id(left), b = vocab_.id(right);
            std::string merged_text = left + (prefix_.empty() ? right : strip_prefix(right));
            std::int32_t merged = vocab_.id(merged_text);
            BASIN_CHECK(a >= 0 && b >= 0, where, ": merge ", rank, " uses a token missing from the vocab ('",
                        a < 0 ? left : right, "')");
            BASIN_CHECK(merged >= 0, where, ": merge ", rank, " produces '", merged_text,
                        "' which is not in the vocab");
            merges_.emplace(pair_key(a, b), std::make_pair(rank, merged));
            merge_list_.emplace_back(left, right);
            ++rank;
        }
        unk_id_ = unk_.empty() ? -1 : vocab_.id(unk_);
    }

    void tokenize(const std::u32string& piece, std::vector<Token>& out) const override {
        const std::string key = utf8_encode(piece);
        {
            std::lock_guard<std::mutex> lock(cache_mutex_);
            auto it = cache_.find(key);
            if (it != cache_.end()) {
                for (auto id : it->second)
                    out.push_back({id, vocab_.token(id)});
                return;
            }
        }
        std::vector<std::int32_t> ids;
        std::int32_t whole = ignore_merges_ ? vocab_.id(key) : -1;
        if (whole >= 0)
            ids.push_back(whole);
        else
            ids = merge_word(piece);
        for (auto id : ids)
            out.push_back({id, vocab_.token(id)});
        std::lock_guard<std::mutex> lock(cache_mutex_);
        if (cache_.size() > 100000) cache_.clear();
        cache_.emplace(key, std::move(ids));
    }

    std::int32_t token_to_id(const std::string& t) const override { return vocab_.id(t); }
    std::string id_to_token(std::int32_t id) const override { return vocab_.token(id); }
    std::size_t vocab_size() const override { return vocab_.size(); }
    std::string type() const override { return "BPE"; }
    json to_json() const override {
        json merges = json::array();
        for (const auto& [a, b] : merge_list_)
            merges.push_back(json::array({a, b}));
        return {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", unk_.empty() ? json(nullptr) : json(unk_)},
                {"continuing_subword_prefix", prefix_.empty() ? json(nullptr) : json(prefix_)},
                {"end_of_word_suffix", suffix_.empty() ? json(nullptr) : json(suffix_)},
                {"fuse_unk", fuse_unk_},
                {"byte_fallback", byte_fallback_},
                {"ignore_merges", ignore_merges_},
                {"vocab", vocab_.to_json()},
                {"merges", merges}};
    }

  private:
    static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
        return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
    }
    std::string strip_prefix(const std::string& s) const {
        return s.compare(0, prefix_.size(), prefix_) == 0 ? s.substr(prefix_.size()) : s;
    }

    std::vector<std::int32_t> merge_word(const std::u32string& piece) const {
        // Initial symbols: one per character, with prefix/suffix, unknowns via byte fallback/unk.
        std::vector<std::int32_t> symbols;
        bool last_unk = false;
        for (std::size_t i = 0; i < piece.size(); ++i) {
            std::string ch;
            utf8_append(ch, piece[i]);
            std::string text = (i > 0 ? prefix_ : "") + ch + (i + 1 == piece.size() ? suffix_ : "");
            std::int32_t id = vocab_.id(text);
            if (id >= 0) {
                symbols.push_back(id);
                last_unk = false;
                continue;
            }
            if (byte_fallback_) {
                bool all = true;
                std::vector<std::int32_t> bytes;
                for (unsigned char b : ch) {
                    char name[8];
                    std::snprintf(name, sizeof(name), "<0x%02X>", b);
                    std::int32_t bid = vocab_.id(name);
                    all = all && bid >= 0;
                    bytes.push_back(bid);
                }
                if (all) {
                    symbols.insert(symbols.end(), bytes.begin(), bytes.end());
                    last_unk = false;
                    continue;
                }
            }
            if (unk_id_ >= 0) {
                if (!(fuse_unk_ && last_unk)) symbols.push_back(unk_id_);
                last_unk = true;
            }
        }
        // Merge lowest-ranked adjacent pairs first (leftmost on ties), as in Hugging Face.
        const std::size_t n = symbols.size();
        std::vector<std::int64_t> prev(n), next(n);
        std::vector<bool> alive(n, true);
        for (std::size_t i = 0; i < n; ++i) {
            prev[i] = std::int64_t(i) - 1;
            next[i] = i + 1 < n ? std::int64_t(i + 1) : -1;
        }
        using Entry = std::tuple<std::int32_t, std::size_t, std::int32_t, std::int32_t>; // rank, pos, a, b
        std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
        auto push = [&](std::size_t left) {
            if (next[left] < 0) return;
            auto it = merges_.find(pair_key(symbols[left], symbols[std::size_t(next[left])]));
            if (it != merges_.end())
                queue.emplace(it->second.first, left, symbols[left], symbols[std::size_t(next[left])]);
        };
        for (std::size_t i = 0; i + 1 < n; ++i)
            push(i);
        while (!queue.empty()) {
            auto [rank, left, a, b] = queue.top();
            queue.pop();
            if (!alive[left] || next[left] < 0) continue;
            std::size_t right = std::size_t(next[left]);
            if (symbols[left] != a || symbols[right] != b) continue; // stale entry
            symbols[left] = merges_.at(pair_key(a, b)).second;
            alive[right] = false;
            next[left] = next[right];
            if (next[right] >= 0) prev[std::size_t(next[right])] = std::int64_t(left);
            if (prev[left] >= 0) push(std::size_t(prev[left]));
            push(left);
        }
        std::vector<std::int32_t> result;
        for (std::size_t i = 0; i < n; ++i)
            if (alive[i]) result.push_back(symbols[i]);
        return result;
    }

    Vocab vocab_;
    std::string unk_, prefix_, suffix_;
    bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
    std::int32_t unk_id_ = -1;
    std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges_; // -> rank, id
    std::vector<std::pair<std::string, std::string>> merge_list_;
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache_;
};

class Unigram : public TokenModel {
  public:
    Unigram(const json& spec, const std::string& where) {
        const auto& vocab = spec.at("vocab");
        BASIN_CHECK(vocab.is_array(), where, ": Unigram 'vocab' must be a list of [piece, score]");
        double min_score = std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < vocab.size(); ++i) {
            const auto& entry = vocab[i];
            BASIN_CHECK(entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_number(), where,
                        ": Unigram vocab entry ", i, " must be [piece, score]");
            std::string piece = entry[0].get<std::string>();
            double score = entry[1].get<double>();
            vocab_.add(piece, std::int32_t(i), where);
            scores_.push_back(score);
            min_score = std::min(min_score, score);
            insert(piece, std::int32_t(i));
        }
        unk_score_ = min_score - 10.0; // SentencePiece's unknown-piece penalty
        unk_id_ = json_integer_or<std::int32_t>(spec, "unk_id", unk_id_, where);
        BASIN_CHECK(unk_id_ < std::int32_t(scores_.size()), where, ": unk_id ", unk_id_, " is outside the vocab");
        byte_fallback_ = spec.value("byte_fallback", false);
    }

    void tokenize(const std::u32string& piece, std::vector<Token>& out) const override {
        const std::string s = utf8_encode(piece);
        const std::size_t n = s.size();
        // best[i]: best score of a segmentation of s[0, i); from[i]: (start, id) of its last piece
        std::vector<double> best(n + 1, -std::numeric_limits<double>::infinity());
        std::vector<std::pair<std::size_t, std::int32_t>> from(n + 1, {0, -1});
        best[0] = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (best[i] == -std::numeric_limits<double>::infinity()) continue;
            std::size_t char_len = utf8_length(static_cast<unsigned char>(s[i]));
            bool single = false;
            std::size_t node = 0;
            for (std::size_t j = i; j < n; ++j) {
                auto it = trie_[node].children.find(static_cast<unsigned char>(s[j]));
                if (it == trie_[node].children.end()) break;
                node = it->second;
                std::int32_t id = trie_[node].id;
                if (id < 0) continue;
                if (j + 1 - i == char_len) single = true;
                double score = best[i] + scores_[std::size_t(id)];
                if (score > best[j + 1]) {
                    best[j + 1] = score;
                    from[j + 1] = {i, id};
                }
            }
            if (!single) {
                std::size_t end = std::min(n, i + char_len);
                double score = best[i] + unk_score_;
                if (score > best[end]) {
                    best[end] = score;
                    from[end] = {i, unk_id_};
                }
            }
        }
        std::vector<std::pair<std::size_t, std::int32_t>> path; // (start, id), reversed
        for (std::size_t end = n; end > 0; end = from[end].first)
            path.push_back(from[end]);
        std::vector<Token> tokens;
        std::size_t end = n;
        std::vector<std::pair<std::size_t, std::size_t>> spans;
        for (auto it = path.begin(); it != path.end(); ++it) {
            spans.emplace_back(it->first, end);
            end = it->first;
        }
        bool last_unk = false;
        for (std::size_t k = path.size(); k-- > 0;) {
            std::int32_t id = path[k].second;
            auto [b, e] = spans[k];
            if (id == unk_id_ && byte_fallback_) {
                for (std::size_t i = b; i < e; ++i) {
                    char name[8];
                    std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned char>(s[i]));
                    std::int32_t bid = vocab_.id(name);
                    tokens.push_back({bid >= 0 ? bid : unk_id_, name});
                }
                continue;
            }
            if (id == unk_id_ && last_unk) continue; // consecutive unknowns fuse into one
            last_unk = id == unk_id_;
            tokens.push_back({id, vocab_.token(id)});
        }
        out.insert(out.end(), tokens.begin(), tokens.end());
    }

    std::int32_t token_to_id(const std::string& t) const override { return vocab_.id(t); }
    std::string id_to_token(std::int32_t id) const override { return vocab_.token(id); }
    std::size_t vocab_size() const override { return vocab_.size(); }
    std::string type() const override { return "Unigram"; }
    json to_json() const override {
        json vocab = json::array();
        for (std::size_t i = 0; i < scores_.size(); ++i)
            vocab.push_back(json::array({vocab_.token(std::int32_t(i)), scores_[i]}));
        return {{"type", "Unigram"}, {"unk_id", unk_id_}, {"vocab", vocab}, {"byte_fallback", byte_fallback_}};
    }

  private:
    struct Node {
        std::unordered_map<unsigned char, std::size_t> children;
        std::int32_t id = -1;
    };
    static std::size_t utf8_length(unsigned char c) {
        return c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
    }
    void insert(const std::string& piece, std::int32_t id) {
        if (trie_.empty()) trie_.emplace_back();
        std::size_t node = 0;
        for (unsigned char c : piece) {
            auto it = trie_[node].children.find(c);
            if (it == trie_[node].children.end()) {
                trie_.emplace_back();
                trie_[node].children[c] = trie_.size() - 1;
                node = trie_.size() - 1;
            } else {
                node = it->second;
            }
        }
        if (trie_[node].id < 0) trie_[node].id = id;
    }

    Vocab vocab_;
    std::vector<double> scores_;
    std::vector<Node> trie_;
    double unk_score_ = -10;
    std::int32_t unk_id_ = 0;
    bool byte_fallback_ = false;
};

} // namespace

std::unique_ptr<TokenModel> make_model(const json& spec, const std::string& where) {
    BASIN_CHECK(spec.is_object(), where, ": 'model' must be an object");
    std::string type = optional_string(spec, "type");
    if (type.empty()) { // older files: infer the type from the fields
        if (spec.contains("merges"))
            type = "BPE";
        else if (spec.contains("continuing_subword_prefix") || spec.contains("max_input_chars_per_word"))
            type = "WordPiece";
        else if (spec.contains("vocab") && spec["vocab"].is_array())
            type = "Unigram";
    }
    const std::string at = where + ": model " + type;
    try {
        if (type == "WordPiece") return std::make_unique<WordPiece>(spec, at);
        if (type == "BPE") return std::make_unique<Bpe>(spec, at);
        if (type == "Unigram") return std::make_unique<Unigram>(spec, at);
    } catch (const nlohmann::json::exception& e) {
        fail(at, ": malformed (", e.what(), ")");
    }
    fail(where, ": unsupported model type '", type.empty() ? "(none; cannot infer)" : type, "'");
}

} // namespace basin::text
