// The experiment report: one self-contained HTML file (inline SVG charts with hover values, inline
// CSS and script; it opens offline) with the paper's figures and tables, drawn from the results
// store, plus each figure as SVG and PDF for papers. Deterministic: the same store gives the
// same files.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace basin {

struct ReportResult {
    std::filesystem::path html;
    std::size_t figures = 0, tables = 0;
    std::filesystem::path markdown; // empty unless asked for
};

struct ReportOptions {
    // Also write the report as Markdown here, with its figures as SVG in a folder beside it named
    // after the file in lower case (docs/REPRODUCTION.md -> docs/reproduction/).
    std::optional<std::filesystem::path> markdown;
    std::string command = "basin report"; // how to regenerate it, quoted in the Markdown
};

// experiment: the experiment folder (holding store.sqlite). Writes experiment/report/report.html
// and experiment/report/figures/*.svg|pdf. The first section compares the experiment's numbers
// with the paper's (PAPER.md) and says where they agree and where they differ.
ReportResult write_report(const std::filesystem::path& experiment, const ReportOptions& options = {});

} // namespace basin
