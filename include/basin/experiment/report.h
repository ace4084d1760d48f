// The experiment report: one self-contained HTML file (inline SVG charts with hover values, inline
// CSS and script; it opens offline) with the paper's figures and tables, drawn from the results
// store, plus each figure as SVG and PDF for papers. Deterministic: the same store gives the
// same files.
#pragma once

#include <filesystem>

namespace basin {

struct ReportResult {
    std::filesystem::path html;
    std::size_t figures = 0, tables = 0;
};

// experiment: the experiment folder (holding store.sqlite). Writes experiment/report/report.html
// and experiment/report/figures/*.svg|pdf.
ReportResult write_report(const std::filesystem::path& experiment);

} // namespace basin
