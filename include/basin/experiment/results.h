// A finished job's output as store rows, and back. The runner calls collect_results after a
// job's command exits successfully; it reads only the job's output folder, through the readers
// of the records the commands wrote (region/records.h for interpolation, hull and plane).
//
// The store keeps a region record as metrics (subject, dataset, metric) and points (name, set,
// coefficients). How a record is spelled there (an interpolation point is the subject
// "alpha=<17 digits>", a plane point "(i,j)", a hull's PB the subject "pb") is owned by the pairs
// below: *_rows writes it and *_from_store reads it back, so the report draws records, not keys.
// Records read from the store carry what the store holds: target names (no files or sizes), the
// loss and accuracy of every score, and no times.
#pragma once

#include "basin/experiment/spec.h"
#include "basin/experiment/store.h"
#include "basin/region/records.h"
#include "basin/space/map.h"

#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace basin {

JobResults collect_results(const Job& job);

// One job's metrics as (subject, dataset, metric) -> value, with the subjects and the datasets in
// first-seen (store) order. The readers below and the report look metrics up through it.
struct MetricIndex {
    std::map<std::tuple<std::string, std::string, std::string>, double> values;
    std::vector<std::string> subjects, datasets;
    MetricIndex() = default;
    explicit MetricIndex(const std::vector<Metric>& metrics);
    // NaN when the store has no such metric
    double value(const std::string& subject, const std::string& dataset, const std::string& metric) const;
};

// Store rows of a map: clustering accuracies, within/between means, the cosine matrix, and each
// model's embedding point.
JobResults map_rows(const MapRecord& map, const Job& job);

// Store rows of one job's region record; A and B (interpolation) are the job's labels.
JobResults interpolation_rows(const InterpolationRecord& record, const Job& job);
JobResults hull_rows(const HullRecord& record, const Job& job);
JobResults plane_rows(const PlaneRecord& record, const Job& job);

// The records again, from one job's metrics and points (Store::metrics(id), Store::points(id)).
InterpolationRecord interpolation_from_store(const std::vector<Metric>& metrics,
                                             const std::vector<PointRecord>& points);
HullRecord hull_from_store(const std::vector<Metric>& metrics, const std::vector<PointRecord>& points);
PlaneRecord plane_from_store(const std::vector<Metric>& metrics, const std::vector<PointRecord>& points);

} // namespace basin
