#include "basin/text/tokenizer.h"
#include "basin/text/unicode.h"
#include "test_util.h"

using namespace basin;
using text::Tokenizer;

namespace {

// A tiny BERT-style WordPiece tokenizer.
Tokenizer wordpiece() {
    nlohmann::json vocab = nlohmann::json::object();
    int id = 0;
    for (const char* t :
         {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "un", "##aff", "##able", "!"})
        vocab[t] = id++;
    nlohmann::json added = nlohmann::json::array();
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
        added.push_back({{"id", vocab[t]}, {"content", t}, {"normalized", false}, {"special", true}});
    nlohmann::json j = {
        {"added_tokens", added},
        {"normalizer", {{"type", "BertNormalizer"}, {"lowercase", true}}},
        {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
        {"post_processor", {{"type", "BertProcessing"}, {"sep", {"[SEP]", 3}}, {"cls", {"[CLS]", 2}}}},
        {"model",
         {{"unk_token", "[UNK]"},
          {"continuing_subword_prefix", "##"},
          {"max_input_chars_per_word", 100},
          {"vocab", vocab}}},
    };
    return Tokenizer::from_json(j, "test");
}

} // namespace

TEST(Tokenizer, WordPieceTypeIsInferredAndSplitsGreedily) {
    auto t = wordpiece();
    EXPECT_EQ(t.model_type(), "WordPiece");
    auto e = t.encode("UNAFFABLE a!");
    EXPECT_EQ(e.ids, (std::vector<std::int32_t>{2, 10, 11, 12, 5, 13, 3}));
    EXPECT_EQ(e.tokens[2], "##aff");
    EXPECT_EQ(t.encode("unx").ids, (std::vector<std::int32_t>{2, 1, 3})); // whole word unknown
}

TEST(Tokenizer, PairsGetTypeIdsAndSpecialMask) {
    auto t = wordpiece();
    auto e = t.encode("a b", std::string_view("c"));
    EXPECT_EQ(e.ids, (std::vector<std::int32_t>{2, 5, 6, 3, 7, 3}));
    EXPECT_EQ(e.type_ids, (std::vector<std::int32_t>{0, 0, 0, 0, 1, 1}));
    EXPECT_EQ(e.special_mask, (std::vector<std::int8_t>{1, 0, 0, 1, 0, 1}));
    EXPECT_EQ(t.num_special_tokens(true), 3u);
}

TEST(Tokenizer, LongestFirstTruncationCountsSpecialTokens) {
    auto t = wordpiece();
    t.truncation().max_length = 7; // 3 specials + 4 tokens
    auto e = t.encode("a a a a a a", std::string_view("b b"));
    EXPECT_EQ(e.ids, (std::vector<std::int32_t>{2, 5, 5, 3, 6, 6, 3}));
    e = t.encode("a a a a a a", std::string_view("b b b b b b"));
    EXPECT_EQ(e.ids, (std::vector<std::int32_t>{2, 5, 5, 3, 6, 6, 3}));
    t.truncation().max_length = 4;
    EXPECT_EQ(t.encode("a b c d e").ids, (std::vector<std::int32_t>{2, 5, 6, 3}));
    t.truncation().strategy = text::TruncationStrategy::OnlySecond;
    t.truncation().max_length = 6;
    EXPECT_EQ(t.encode("a b", std::string_view("c d e")).ids, (std::vector<std::int32_t>{2, 5, 6, 3, 7, 3}));
}

TEST(Tokenizer, PaddingToLongestAndMultiple) {
    auto t = wordpiece();
    t.padding().enabled = true;
    t.padding().multiple_of = 4;
    auto batch = t.encode_batch({{"a", std::nullopt}, {"a b c", std::nullopt}});
    ASSERT_EQ(batch[0].size(), 8u);
    EXPECT_EQ(batch[0].attention_mask, (std::vector<std::int8_t>{1, 1, 1, 0, 0, 0, 0, 0}));
    EXPECT_EQ(batch[1].ids[5], 0);
    t.padding().side = text::PaddingSide::Left;
    batch = t.encode_batch({{"a", std::nullopt}, {"a b", std::nullopt}});
    EXPECT_EQ(batch[0].ids, (std::vector<std::int32_t>{0, 2, 5, 3})); // longest is 4 = a multiple of 4
}

TEST(Tokenizer, AddedTokensAreMatchedBeforeNormalization) {
    auto t = wordpiece();
    EXPECT_EQ(t.encode("a [MASK] b", std::nullopt, false).ids, (std::vector<std::int32_t>{5, 4, 6}));
    EXPECT_EQ(t.encode("a [mask] b", std::nullopt, false).ids, (std::vector<std::int32_t>{5, 1, 1, 1, 6})); // [ mask ]
}

TEST(Tokenizer, ByteLevelBpeMergesAndLstripMask) {
    auto j = text::byte_level_bpe_json({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"\xC4\xA0", "w"}});
    auto t = Tokenizer::from_json(j, "test");
    auto e = t.encode("hello world", std::nullopt, false);
    EXPECT_EQ(e.tokens, (std::vector<std::string>{"hell", "o", "\xC4\xA0w", "o", "r", "l", "d"}));
    // <mask> strips the space to its left, as RoBERTa's does
    auto m = t.encode("a <mask>", std::nullopt, false);
    EXPECT_EQ(m.tokens, (std::vector<std::string>{"a", "<mask>"}));
    EXPECT_EQ(t.encode("x").ids.front(), 0); // <s>
}

TEST(Tokenizer, MalformedFilesGiveClearErrors) {
    EXPECT_ERROR_CONTAINS(Tokenizer::from_json(nlohmann::json::object(), "t.json"), "t.json", "'model'");
    nlohmann::json j = text::byte_level_bpe_json({});
    j["model"]["merges"] = {"a"};
    EXPECT_ERROR_CONTAINS(Tokenizer::from_json(j, "t.json"), "merge 0", "two tokens");
    j = text::byte_level_bpe_json({});
    j["pre_tokenizer"] = {{"type", "Nonsense"}};
    EXPECT_ERROR_CONTAINS(Tokenizer::from_json(j, "t.json"), "unsupported pre_tokenizer type 'Nonsense'");
    EXPECT_ERROR_CONTAINS(Tokenizer::from_file("/nonexistent/tokenizer.json"), "tokenizer.json not found");
}

TEST(Tokenizer, InvalidUtf8InputIsAnError) {
    auto t = wordpiece();
    EXPECT_ERROR_CONTAINS(t.encode("ok \xff"), "invalid UTF-8 at byte 3");
}

TEST(Unicode, ClassesFollowRustDefinitions) {
    using namespace text;
    EXPECT_TRUE(is_whitespace(U'\x0b'));
    EXPECT_TRUE(is_whitespace(0x85));
    EXPECT_TRUE(is_whitespace(0x3000));
    EXPECT_FALSE(is_whitespace(0xfeff));   // a format character, not white space
    EXPECT_TRUE(is_bert_control(0x200b));  // Cf
    EXPECT_FALSE(is_bert_control(0xd7ff)); // unassigned: kept, as the Rust tokenizers keep it
    EXPECT_TRUE(is_bert_control(0xe000));  // private use
    EXPECT_FALSE(is_bert_control(0x890));  // Cf since Unicode 14, unknown to the Rust tables
    EXPECT_FALSE(is_bert_control(U'\t'));
    EXPECT_TRUE(is_bert_punctuation(U'$'));
    EXPECT_FALSE(is_bert_punctuation(0x61d)); // Po since Unicode 14
    EXPECT_TRUE(is_bert_punctuation(0x166d)); // Po in Unicode 8, So now
    EXPECT_TRUE(is_bert_accent(0x301));
    EXPECT_FALSE(is_bert_accent(0x7fd)); // Mn since Unicode 11
    EXPECT_TRUE(is_cjk(0x20000));
    EXPECT_FALSE(is_cjk(0x2b820)); // the Rust tokenizers' Extension E range starts at U+2B920
    EXPECT_TRUE(is_cjk(0x2b920));
    EXPECT_EQ(to_lower(U"\u0130\u03a3A"), std::u32string(U"i\u0307\u03c3a"));
    EXPECT_EQ(normalize(U"\u00e9", NormalForm::NFD), std::u32string(U"e\u0301"));
    EXPECT_EQ(normalize(U"\ufb01", NormalForm::NFKC), std::u32string(U"fi"));
    EXPECT_EQ(utf8_encode(utf8_decode("h\xc3\xa9\xf0\x9f\xa4\x97")), "h\xc3\xa9\xf0\x9f\xa4\x97");
    EXPECT_FALSE(utf8_valid("\xc0\xaf"));     // overlong
    EXPECT_FALSE(utf8_valid("\xed\xa0\x80")); // surrogate
}

TEST(Tokenizer, IdsMustBeIntegers) {
    // a float id (or one beyond int32) is an error naming the place, not a silent conversion
    auto spec =
        nlohmann::json::parse(R"({"model": {"type": "WordPiece", "vocab": {"a": 0, "b": 1.5e30}, "unk_token": "a"}})");
    EXPECT_ERROR_CONTAINS(basin::text::Tokenizer::from_json(spec, "tokenizer.json"), "tokenizer.json", "vocab['b']");
    spec = nlohmann::json::parse(
        R"({"model": {"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "a"}, "added_tokens": [{"id": 4294967296, "content": "x"}]})");
    EXPECT_ERROR_CONTAINS(basin::text::Tokenizer::from_json(spec, "tokenizer.json"), "added token id");
}
