// The numbers of Gueta et al. (2023) that basin's reports compare with, in one table (PAPER.md,
// "Numbers reported"). The report's findings read them from here; a unit test checks every entry
// against ../shared/PAPER.md, so a number can be changed in one place and not drift from its source.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace basin::paper {

struct Number {
    std::string_view id;         // how the report asks for it
    double value;                // as a fraction for shares, in accuracy points for gains
    std::string_view as_written; // the text PAPER.md writes it as, in the row named by `row`
    std::string_view row;        // a phrase of that row of PAPER.md's table
};

inline constexpr Number kNumbers[] = {
    {"clustering/dataset", 0.98, "98%", "same-dataset clustering accuracy"},
    {"clustering/family", 0.90, "90%", "task-family clustering accuracy"},
    {"pb_in/dataset", 0.88, "88%", "hull samples beat members"},
    {"pb_in/family", 0.967, "96.7%", "hull samples beat members"},
    {"pb_in/general", 0.90, "/ 90%", "hull samples beat members"},
    {"pb_ex", 1.00, "100%", "hull samples beat outside models"},
    {"centroid/bitfit/low", 3.06, "+3.06", "centroid vs pretrained as start for BitFit"},
    {"centroid/bitfit/high", 4.03, "+4.03", "centroid vs pretrained as start for BitFit"},
    {"centroid/bitfit/better", 11, "11 of 12", "centroid vs pretrained as start for BitFit"},
    {"centroid/bitfit/targets", 12, "12 targets", "centroid vs pretrained as start for BitFit"},
    {"centroid/bitfit/few_shot", 10.66, "+10.66", "few-shot"},
};

// The value of one entry; an unknown id is a programming error (it throws).
inline double number(std::string_view id) {
    for (const auto& n : kNumbers)
        if (n.id == id) return n.value;
    throw std::logic_error("basin::paper::number: no entry '" + std::string(id) + "'");
}

} // namespace basin::paper
