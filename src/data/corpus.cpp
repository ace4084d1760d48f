#include "basin/data/corpus.h"

#include "basin/core/error.h"
#include "basin/text/unicode.h"

#include <algorithm>
#include <fstream>
#include <iterator>

namespace basin {

Corpus read_corpus(const std::filesystem::path& path, const std::function<void(const std::string&)>& warn) {
    namespace fs = std::filesystem;
    BASIN_CHECK(fs::exists(path), path.string(), ": corpus not found");
    std::vector<fs::path> paths;
    if (fs::is_regular_file(path)) {
        paths.push_back(path);
    } else {
        for (const auto& entry : fs::recursive_directory_iterator(path))
            if (entry.is_regular_file()) paths.push_back(entry.path());
        std::sort(paths.begin(), paths.end());
    }
    Corpus corpus;
    for (const auto& p : paths) {
        std::ifstream in(p, std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const bool binary = text.find('\0') != std::string::npos || !text::utf8_valid(text);
        if (binary || text.find_first_not_of(" \t\r\n") == std::string::npos) {
            ++corpus.skipped;
            if (warn) warn(p.string() + ": skipped (" + (binary ? "binary or not UTF-8" : "empty") + ")");
            continue;
        }
        corpus.bytes += text.size();
        corpus.files.push_back({p, std::move(text)});
    }
    BASIN_CHECK(!corpus.files.empty(), path.string(), ": no usable text files in the corpus");
    return corpus;
}

} // namespace basin
