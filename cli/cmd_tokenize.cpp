// basin tokenize --tokenizer tokenizer.json --input FILE: token ids for each input, as JSONL.
// Input lines are JSON objects {"text": ..., "text_pair": ...} or, with --plain, raw text lines.
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/data/dataset.h"
#include "basin/text/tokenizer.h"
#include "commands.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace basin::cli {

Runner add_tokenize(CLI::App& app) {
    struct Options {
        std::string tokenizer, input, output;
        bool plain = false, no_special = false, tokens = false, normalized = false;
        bool no_truncation = false, no_padding = false;
        std::size_t max_length = 0;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--tokenizer", o->tokenizer, "tokenizer.json (or a checkpoint folder holding one)")->required();
    app.add_option("--input", o->input, "JSONL of {\"text\", \"text_pair\"?} objects (or text lines with --plain)")
        ->required();
    app.add_option("--output", o->output, "Write JSONL here instead of standard output");
    app.add_flag("--plain", o->plain, "Input is one raw text per line");
    app.add_flag("--no-special", o->no_special, "Do not add the post-processor's special tokens");
    app.add_flag("--tokens", o->tokens, "Also print the token strings");
    app.add_flag("--normalized", o->normalized, "Also print the normalizer's output for the text");
    app.add_option("--max-length", o->max_length, "Truncate to this many tokens (0: as tokenizer.json says)")
        ->capture_default_str();
    app.add_flag("--no-truncation", o->no_truncation, "Ignore tokenizer.json's truncation");
    app.add_flag("--no-padding", o->no_padding,
                 "Ignore tokenizer.json's padding (each input is otherwise padded as a batch of one, as the Hugging "
                 "Face tokenizers' encode does)");
    return [o]() {
        fs::path path(o->tokenizer);
        if (fs::is_directory(path)) path /= "tokenizer.json";
        auto tokenizer = text::Tokenizer::from_file(path);
        if (o->no_truncation) tokenizer.truncation().max_length = 0;
        if (o->max_length) tokenizer.truncation().max_length = o->max_length;
        if (o->no_padding) tokenizer.padding().enabled = false;
        std::ifstream in(o->input, std::ios::binary);
        BASIN_CHECK(in, o->input, ": cannot open input file");
        std::string line, out;
        std::size_t number = 0;
        while (read_bounded_line(in, line, o->input, number + 1)) {
            ++number;
            std::string text;
            std::optional<std::string> pair;
            if (o->plain) {
                text = line;
            } else {
                if (line.empty()) continue;
                nlohmann::json j;
                try {
                    j = nlohmann::json::parse(line);
                } catch (const nlohmann::json::parse_error& e) {
                    fail(o->input, ":", number, ": malformed JSON (", e.what(), ")");
                }
                BASIN_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), o->input, ":", number,
                            ": expected an object with a string 'text'");
                text = j["text"].get<std::string>();
                if (j.contains("text_pair") && j["text_pair"].is_string()) pair = j["text_pair"].get<std::string>();
            }
            text::Encoding e;
            try {
                e = std::move(tokenizer.encode_batch({{text, pair}}, !o->no_special).front());
            } catch (const Error& err) {
                fail(o->input, ":", number, ": ", err.what());
            }
            nlohmann::json row = {{"ids", e.ids}, {"type_ids", e.type_ids}};
            if (o->tokens) row["tokens"] = e.tokens;
            if (o->normalized) row["normalized"] = tokenizer.normalize(text);
            out += row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        }
        if (o->output.empty())
            std::fwrite(out.data(), 1, out.size(), stdout);
        else
            write_text_atomically(o->output, out);
        return 0;
    };
}

} // namespace basin::cli
