// Reading a text corpus: one file or a folder of files (recursively, in sorted order). Empty
// files and binary files (NUL bytes or invalid UTF-8) are skipped with a warning naming them.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace basin {

struct CorpusFile {
    std::filesystem::path path;
    std::string text;
};

struct Corpus {
    std::vector<CorpusFile> files;
    std::size_t skipped = 0;
    std::uint64_t bytes = 0;
};

Corpus read_corpus(const std::filesystem::path& path, const std::function<void(const std::string&)>& warn = {});

} // namespace basin
