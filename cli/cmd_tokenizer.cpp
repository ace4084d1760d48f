// basin tokenizer train: a RoBERTa-style byte-level BPE tokenizer.json from a text corpus.
#include "basin/core/fs.h"
#include "basin/data/corpus.h"
#include "basin/text/bpe_trainer.h"
#include "commands.h"

#include <cstdio>

namespace basin::cli {

Runner add_tokenizer(CLI::App& app) {
    app.require_subcommand(1);
    CLI::App* train = app.add_subcommand("train", "Train a byte-level BPE tokenizer (RoBERTa special tokens)");
    struct Options {
        std::string corpus, out;
        std::size_t vocab_size = 8000;
        std::uint64_t min_frequency = 2;
    };
    auto o = std::make_shared<Options>();
    train->add_option("--corpus", o->corpus, "Text file or folder of text files")->required();
    train->add_option("--vocab-size", o->vocab_size, "Tokens in the vocabulary, specials and bytes included")
        ->capture_default_str();
    train->add_option("--min-frequency", o->min_frequency, "Never merge a pair seen fewer times")
        ->capture_default_str();
    train->add_option("--out", o->out, "Output tokenizer.json")->required();
    return [o]() {
        text::BpeTrainOptions options;
        options.vocab_size = o->vocab_size;
        options.min_frequency = o->min_frequency;
        // empty and binary files are skipped with a warning naming them
        const Corpus corpus = read_corpus(
            o->corpus, [](const std::string& line) { std::fprintf(stderr, "warning: %s\n", line.c_str()); });
        std::vector<std::string_view> texts;
        for (const auto& f : corpus.files)
            texts.push_back(f.text);
        auto r = text::train_byte_level_bpe(texts, options, o->corpus);
        write_text_atomically(o->out, r.tokenizer.dump(2) + "\n");
        std::printf(
            "wrote %s: %zu tokens (%zu merges) from %zu files (%zu skipped), %llu bytes, %llu words (%llu distinct)\n",
            o->out.c_str(), o->vocab_size, r.merges, corpus.files.size(), corpus.skipped,
            (unsigned long long)corpus.bytes, (unsigned long long)r.words, (unsigned long long)r.distinct_words);
        return 0;
    };
}

} // namespace basin::cli
