#include "basin/text/tokenizer.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/json_value.h"
#include "basin/core/limits.h"
#include "basin/text/components.h"
#include "basin/text/unicode.h"

#include <algorithm>

namespace basin::text {

using nlohmann::json;

// Post-processors: BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel (no-op on
// ids) and Sequence, reduced to one template each for single inputs and pairs.
struct Tokenizer::PostProcessor {
    struct Item {
        bool is_sequence = false;
        int sequence = 0; // 0 = A, 1 = B
        std::vector<std::int32_t> ids;
        std::vector<std::string> tokens;
        std::int32_t type_id = 0;
    };
    std::vector<Item> single, pair;
    bool active = false;

    static Item special(const std::string& token, std::int32_t id, std::int32_t type_id) {
        Item it;
        it.ids = {id};
        it.tokens = {token};
        it.type_id = type_id;
        return it;
    }
    static Item sequence(int which, std::int32_t type_id) {
        Item it;
        it.is_sequence = true;
        it.sequence = which;
        it.type_id = type_id;
        return it;
    }
    std::size_t added(bool is_pair) const {
        if (!active) return 0;
        std::size_t n = 0;
        for (const auto& item : is_pair ? pair : single)
            n += item.ids.size();
        return n;
    }

    void load(const json& spec, const std::string& where) {
        if (spec.is_null()) return;
        const std::string type = spec.at("type").get<std::string>();
        const std::string at = where + ": post_processor " + type;
        auto token_pair = [&](const char* key) {
            const auto& v = spec.at(key);
            BASIN_CHECK(v.is_array() && v.size() == 2, at, ": '", key, "' must be [token, id]");
            return std::make_pair(v[0].get<std::string>(), json_integer<std::int32_t>(v[1], at + ": '" + key + "' id"));
        };
        if (type == "BertProcessing") {
            auto [cls, cls_id] = token_pair("cls");
            auto [sep, sep_id] = token_pair("sep");
            single = {special(cls, cls_id, 0), sequence(0, 0), special(sep, sep_id, 0)};
            pair = {special(cls, cls_id, 0), sequence(0, 0), special(sep, sep_id, 0), sequence(1, 1),
                    special(sep, sep_id, 1)};
            active = true;
        } else if (type == "RobertaProcessing") {
            auto [cls, cls_id] = token_pair("cls");
            auto [sep, sep_id] = token_pair("sep");
            single = {special(cls, cls_id, 0), sequence(0, 0), special(sep, sep_id, 0)};
            pair = {special(cls, cls_id, 0), sequence(0, 0), special(sep, sep_id, 0),
                    special(sep, sep_id, 0), sequence(1, 0), special(sep, sep_id, 0)};
            active = true;
        } else if (type == "TemplateProcessing") {
            std::map<std::string, std::pair<std::vector<std::int32_t>, std::vector<std::string>>> specials;
            for (auto it = spec.at("special_tokens").begin(); it != spec.at("special_tokens").end(); ++it)
                specials[it.key()] = {it.value().at("ids").get<std::vector<std::int32_t>>(),
                                      it.value().at("tokens").get<std::vector<std::string>>()};
            auto parse = [&](const json& items) {
                std::vector<Item> out;
                for (const auto& item : items) {
                    if (item.contains("Sequence")) {
                        const auto& s = item["Sequence"];
                        const std::string id = s.at("id").get<std::string>();
                        BASIN_CHECK(id == "A" || id == "B", at, ": sequence id must be A or B, got '", id, "'");
                        out.push_back(sequence(id == "A" ? 0 : 1, json_integer_or<std::int32_t>(s, "type_id", 0, at)));
                    } else {
                        const auto& s = item.at("SpecialToken");
                        const std::string id = s.at("id").get<std::string>();
                        auto found = specials.find(id);
                        BASIN_CHECK(found != specials.end(), at, ": special token '", id,
                                    "' is not listed in special_tokens");
                        Item special_item;
                        special_item.ids = found->second.first;
                        special_item.tokens = found->second.second;
                        special_item.type_id = json_integer_or<std::int32_t>(s, "type_id", 0, at);
                        out.push_back(special_item);
                    }
                }
                return out;
            };
            single = parse(spec.at("single"));
            pair = parse(spec.at("pair"));
            active = true;
        } else if (type == "Sequence") {
            for (const auto& child : spec.at("processors")) {
                PostProcessor p;
                p.load(child, where);
                if (p.active) {
                    BASIN_CHECK(!active, at, ": more than one post-processor adds special tokens");
                    *this = p;
                }
            }
        } else if (type != "ByteLevel") {
            fail(where, ": unsupported post_processor type '", type, "'");
        }
    }
};

Tokenizer::Tokenizer() : post_(std::make_unique<PostProcessor>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
    BASIN_CHECK(std::filesystem::exists(path), path.string(), ": tokenizer.json not found");
    return from_json(read_json_file(path, limits::tokenizer_json), path.string());
}

Tokenizer Tokenizer::from_json(const json& j, const std::string& where) {
    BASIN_CHECK(j.is_object() && j.contains("model"), where, ": expected a tokenizer.json object with a 'model'");
    Tokenizer t;
    {
        const std::string canonical = j.dump();
        t.spec_sha256_ = sha256_hex(canonical.data(), canonical.size());
    }
    try {
        t.normalizer_ = make_normalizer(j.value("normalizer", json()), where);
        t.pre_tokenizer_ = make_pre_tokenizer(j.value("pre_tokenizer", json()), where);
        t.model_ = make_model(j["model"], where);
        t.post_->load(j.value("post_processor", json()), where);
        for (const auto& a : j.value("added_tokens", json::array())) {
            AddedToken token;
            token.id = json_integer<std::int32_t>(a.at("id"), where + ": added token id");
            token.content = a.at("content").get<std::string>();
            token.single_word = a.value("single_word", false);
            token.lstrip = a.value("lstrip", false);
            token.rstrip = a.value("rstrip", false);
            token.normalized = a.value("normalized", !a.value("special", false));
            token.special = a.value("special", false);
            BASIN_CHECK(!token.content.empty(), where, ": added token ", token.id, " is empty");
            t.added_.push_back(token);
        }
        if (const auto& trunc = j.value("truncation", json()); trunc.is_object()) {
            t.truncation_.max_length = json_integer_or<std::size_t>(trunc, "max_length", 0, where + ": truncation");
            const std::string strategy = trunc.value("strategy", std::string("LongestFirst"));
            t.truncation_.strategy = strategy == "OnlyFirst"    ? TruncationStrategy::OnlyFirst
                                     : strategy == "OnlySecond" ? TruncationStrategy::OnlySecond
                                                                : TruncationStrategy::LongestFirst;
        }
        if (const auto& pad = j.value("padding", json()); pad.is_object()) {
            t.padding_.enabled = true;
            t.padding_.side =
                pad.value("direction", std::string("Right")) == "Left" ? PaddingSide::Left : PaddingSide::Right;
            if (pad.contains("strategy") && pad["strategy"].is_object() && pad["strategy"].contains("Fixed"))
                t.padding_.fixed_length =
                    json_integer<std::size_t>(pad["strategy"]["Fixed"], where + ": padding length");
            if (pad.contains("pad_to_multiple_of") && !pad["pad_to_multiple_of"].is_null())
                t.padding_.multiple_of =
                    json_integer<std::size_t>(pad["pad_to_multiple_of"], where + ": pad_to_multiple_of");
            t.padding_.pad_id = json_integer_or<std::int32_t>(pad, "pad_id", 0, where + ": padding");
            t.padding_.pad_type_id = json_integer_or<std::int32_t>(pad, "pad_type_id", 0, where + ": padding");
            t.padding_.pad_token = pad.value("pad_token", std::string("[PAD]"));
        }
    } catch (const json::exception& e) {
        fail(where, ": malformed tokenizer.json (", e.what(), ")");
    }
    for (const auto& token : t.added_) {
        std::u32string raw = utf8_decode(token.content, where);
        std::u32string normalized = raw;
        if (token.normalized && t.normalizer_) t.normalizer_->normalize(normalized);
        t.added_raw_.push_back(raw);
        t.added_normalized_.push_back(normalized);
    }
    return t;
}

std::vector<Tokenizer::Segment> Tokenizer::split_added(const std::u32string& text, bool normalized) const {
    std::vector<Segment> out;
    std::size_t emitted = 0; // text before this index is already in out
    std::size_t i = 0;
    auto word_char = [](char32_t c) { return is_alphanumeric(c) || c == '_'; };
    while (i < text.size()) {
        // leftmost-longest match among the added tokens of this kind
        std::size_t best_len = 0;
        std::int32_t best = -1;
        for (std::size_t k = 0; k < added_.size(); ++k) {
            if (added_[k].normalized != normalized) continue;
            const auto& pattern = normalized ? added_normalized_[k] : added_raw_[k];
            if (pattern.empty() || pattern.size() <= best_len) continue;
            if (text.compare(i, pattern.size(), pattern) != 0) continue;
            if (added_[k].single_word) {
                bool before = i == 0 || !word_char(text[i - 1]);
                bool after = i + pattern.size() == text.size() || !word_char(text[i + pattern.size()]);
                if (!before || !after) continue;
            }
            best_len = pattern.size();
            best = std::int32_t(k);
        }
        if (best < 0) {
            ++i;
            continue;
        }
        std::size_t start = i, stop = i + best_len;
        if (added_[std::size_t(best)].lstrip)
            while (start > emitted && is_whitespace(text[start - 1]))
                --start;
        if (added_[std::size_t(best)].rstrip)
            while (stop < text.size() && is_whitespace(text[stop]))
                ++stop;
        if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
        out.push_back({text.substr(start, stop - start), best});
        emitted = i = stop;
    }
    if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
    return out;
}

Encoding Tokenizer::tokenize(std::string_view text) const {
    Encoding enc;
    std::u32string input = utf8_decode(text, "tokenizer input");
    bool first = true;
    for (auto& raw_segment : split_added(input, /*normalized=*/false)) {
        if (raw_segment.added >= 0) {
            enc.ids.push_back(added_[std::size_t(raw_segment.added)].id);
            enc.tokens.push_back(added_[std::size_t(raw_segment.added)].content);
            first = false;
            continue;
        }
        std::u32string normalized = std::move(raw_segment.text);
        if (normalizer_) normalizer_->normalize(normalized);
        for (auto& segment : split_added(normalized, /*normalized=*/true)) {
            if (segment.added >= 0) {
                enc.ids.push_back(added_[std::size_t(segment.added)].id);
                enc.tokens.push_back(added_[std::size_t(segment.added)].content);
                first = false;
                continue;
            }
            std::vector<std::u32string> pieces{std::move(segment.text)};
            if (pre_tokenizer_) pre_tokenizer_->split(pieces, first);
            first = false;
            std::vector<Token> tokens;
            for (const auto& piece : pieces)
                if (!piece.empty()) model_->tokenize(piece, tokens);
            for (auto& token : tokens) {
                enc.ids.push_back(token.id);
                enc.tokens.push_back(std::move(token.text));
            }
        }
    }
    enc.type_ids.assign(enc.ids.size(), 0);
    enc.special_mask.assign(enc.ids.size(), 0);
    return enc;
}

namespace {
void truncate_to(Encoding& e, std::size_t n) {
    if (e.ids.size() <= n) return;
    e.ids.resize(n);
    e.type_ids.resize(n);
    e.special_mask.resize(n);
    e.tokens.resize(n);
}
} // namespace

Encoding Tokenizer::post_process(Encoding a, std::optional<Encoding> b, bool add_special,
                                 const TruncationOptions& truncation) const {
    const bool is_pair = b.has_value();
    if (truncation.max_length > 0) {
        const std::size_t added = add_special ? post_->added(is_pair) : 0;
        const std::size_t budget = truncation.max_length > added ? truncation.max_length - added : 0;
        std::size_t n1 = a.size(), n2 = is_pair ? b->size() : 0;
        if (n1 + n2 > budget) {
            switch (truncation.strategy) {
            case TruncationStrategy::LongestFirst: {
                // Remove one token at a time from the longer sequence (the second on ties).
                std::size_t excess = n1 + n2 - budget;
                std::size_t diff = n1 > n2 ? n1 - n2 : n2 - n1;
                std::size_t from_longer = std::min(excess, diff);
                if (n1 > n2)
                    n1 -= from_longer;
                else
                    n2 -= from_longer;
                excess -= from_longer;
                n1 -= excess / 2;
                n2 -= excess - excess / 2;
                break;
            }
            case TruncationStrategy::OnlyFirst:
                BASIN_CHECK(n2 <= budget, "truncation only_first: the second sequence alone (", n2,
                            " tokens) exceeds max_length ", truncation.max_length);
                n1 = budget - n2;
                break;
            case TruncationStrategy::OnlySecond:
                BASIN_CHECK(is_pair && n1 <= budget, "truncation only_second: the first sequence (", n1,
                            " tokens) exceeds max_length ", truncation.max_length);
                n2 = budget - n1;
                break;
            }
            truncate_to(a, n1);
            if (is_pair) truncate_to(*b, n2);
        }
    }
    if (!add_special || !post_->active) {
        if (is_pair) {
            for (auto& t : b->type_ids)
                t = 1;
            a.ids.insert(a.ids.end(), b->ids.begin(), b->ids.end());
            a.type_ids.insert(a.type_ids.end(), b->type_ids.begin(), b->type_ids.end());
            a.special_mask.insert(a.special_mask.end(), b->special_mask.begin(), b->special_mask.end());
            a.tokens.insert(a.tokens.end(), b->tokens.begin(), b->tokens.end());
        }
        a.attention_mask.assign(a.ids.size(), 1);
        return a;
    }
    Encoding out;
    for (const auto& item : is_pair ? post_->pair : post_->single) {
        if (item.is_sequence) {
            const Encoding& src = item.sequence == 0 ? a : *b;
            out.ids.insert(out.ids.end(), src.ids.begin(), src.ids.end());
            out.tokens.insert(out.tokens.end(), src.tokens.begin(), src.tokens.end());
            out.type_ids.insert(out.type_ids.end(), src.ids.size(), item.type_id);
            out.special_mask.insert(out.special_mask.end(), src.ids.size(), 0);
        } else {
            out.ids.insert(out.ids.end(), item.ids.begin(), item.ids.end());
            out.tokens.insert(out.tokens.end(), item.tokens.begin(), item.tokens.end());
            out.type_ids.insert(out.type_ids.end(), item.ids.size(), item.type_id);
            out.special_mask.insert(out.special_mask.end(), item.ids.size(), 1);
        }
    }
    out.attention_mask.assign(out.ids.size(), 1);
    return out;
}

Encoding Tokenizer::encode(std::string_view text, std::optional<std::string_view> pair, bool add_special_tokens) const {
    return encode(text, pair, add_special_tokens, truncation_);
}

Encoding Tokenizer::encode(std::string_view text, std::optional<std::string_view> pair, bool add_special_tokens,
                           const TruncationOptions& truncation) const {
    Encoding a = tokenize(text);
    std::optional<Encoding> b;
    if (pair) b = tokenize(*pair);
    return post_process(std::move(a), std::move(b), add_special_tokens, truncation);
}

std::vector<Encoding>
Tokenizer::encode_batch(const std::vector<std::pair<std::string, std::optional<std::string>>>& inputs,
                        bool add_special_tokens) const {
    std::vector<Encoding> out;
    out.reserve(inputs.size());
    for (const auto& [text, pair] : inputs)
        out.push_back(encode(text, pair ? std::optional<std::string_view>(*pair) : std::nullopt, add_special_tokens));
    if (padding_.enabled) pad(out);
    return out;
}

void Tokenizer::pad(std::vector<Encoding>& batch) const {
    std::size_t target = padding_.fixed_length;
    if (target == 0)
        for (const auto& e : batch)
            target = std::max(target, e.size());
    if (padding_.multiple_of > 1 && target % padding_.multiple_of)
        target += padding_.multiple_of - target % padding_.multiple_of;
    for (auto& e : batch) {
        if (e.size() >= target) continue;
        const std::size_t n = target - e.size();
        auto grow = [&](auto& v, auto value) {
            using T = typename std::decay_t<decltype(v)>::value_type;
            if (padding_.side == PaddingSide::Right)
                v.insert(v.end(), n, T(value));
            else
                v.insert(v.begin(), n, T(value));
        };
        grow(e.ids, padding_.pad_id);
        grow(e.type_ids, padding_.pad_type_id);
        grow(e.special_mask, 1);
        grow(e.attention_mask, 0);
        grow(e.tokens, padding_.pad_token);
    }
}

std::string Tokenizer::normalize(std::string_view text) const {
    std::u32string s = utf8_decode(text, "tokenizer input");
    if (normalizer_) normalizer_->normalize(s);
    return utf8_encode(s);
}

std::int32_t Tokenizer::token_to_id(const std::string& token) const {
    for (const auto& a : added_)
        if (a.content == token) return a.id;
    return model_->token_to_id(token);
}

std::string Tokenizer::id_to_token(std::int32_t id) const {
    for (const auto& a : added_)
        if (a.id == id) return a.content;
    return model_->id_to_token(id);
}

std::size_t Tokenizer::vocab_size() const {
    std::size_t n = model_->vocab_size();
    for (const auto& a : added_)
        if (model_->id_to_token(a.id).empty()) n = std::max(n, std::size_t(a.id) + 1);
    return n;
}

std::size_t Tokenizer::num_special_tokens(bool pair) const {
    return post_->added(pair);
}
std::string Tokenizer::model_type() const {
    return model_->type();
}

} // namespace basin::text

namespace basin::text {

json byte_level_bpe_json(const std::vector<std::pair<std::string, std::string>>& merges) {
    json vocab = json::object();
    std::int32_t next = 0;
    for (const char* special : {"<s>", "<pad>", "</s>", "<unk>"})
        vocab[special] = next++;
    for (char32_t c : bytes_to_unicode())
        vocab[utf8_encode(std::u32string(1, c))] = next++;
    json merge_list = json::array();
    for (const auto& [a, b] : merges) {
        const std::string merged = a + b;
        if (!vocab.contains(merged)) vocab[merged] = next++;
        merge_list.push_back(json::array({a, b}));
    }
    const std::int32_t mask = next++;
    vocab["<mask>"] = mask;
    auto added = [](std::int32_t id, const char* content, bool lstrip) {
        return json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", lstrip},
                    {"rstrip", false}, {"normalized", false}, {"special", true}};
    };
    json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = json::array({added(0, "<s>", false), added(1, "<pad>", false), added(2, "</s>", false),
                                     added(3, "<unk>", false), added(mask, "<mask>", true)});
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    j["post_processor"] = {{"type", "RobertaProcessing"},
                           {"sep", json::array({"</s>", 2})},
                           {"cls", json::array({"<s>", 0})},
                           {"trim_offsets", true},
                           {"add_prefix_space", false}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    j["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", merge_list}};
    return j;
}

} // namespace basin::text
