// The experiment report: one self-contained HTML file (inline SVG charts with hover values, inline
// CSS and script; it opens offline) with the paper's figures and tables, drawn from the results
// store, plus each figure as SVG and PDF for papers. Deterministic: the same store gives the
// same files.
#pragma once

#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace basin {

// One of the paper's findings as a study measured it: the record behind a row of the report's
// first table.
// not_shown: a structure the paper claims that a permutation test here does not find (p > 0.05).
enum class Verdict { agrees, agrees_in_direction, differs, not_shown, no_paper_number };

struct Finding {
    std::string finding, paper, basin, spread; // as the table prints them
    Verdict verdict = Verdict::no_paper_number;
    double value = NAN; // the measured number in the unit below, for comparing studies
    std::string unit;   // "%" (a share, compared in points), "points", "loss", "x" (a ratio)
};

// The findings of one experiment folder's store (no files written).
std::vector<Finding> paper_findings(const std::filesystem::path& experiment);

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

// Several experiments (for example one study on two bases) in one document: the paper's findings
// measured by each side by side, what changed from the second-to-last study to the last, the
// fine-tuned accuracy of each, then every study's own sections (figures named after its folder).
// The HTML goes to FIRST/report-comparison/.
ReportResult write_comparison_report(const std::vector<std::filesystem::path>& experiments,
                                     const ReportOptions& options = {});

// Whether the report has a section for a job kind (experiment/job_kinds.h): every kind needs one.
bool report_has_section(const std::string& kind);

} // namespace basin
