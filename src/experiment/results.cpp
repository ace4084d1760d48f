#include "basin/experiment/results.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "basin/core/error.h"
#include "basin/io/checkpoint.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/data/dataset.h"

namespace basin {

namespace {

using nlohmann::json;

json read_json(const fs::path& file) {
    json j = json::parse(read_text_file(file), nullptr, false);
    BASIN_CHECK(!j.is_discarded(), file.string(), ": not valid JSON");
    return j;
}

// Rows of a CSV file with a header, as column -> text.
std::vector<std::map<std::string, std::string>> read_csv(const fs::path& file) {
    std::ifstream in(file);
    BASIN_CHECK(in, file.string(), ": cannot open");
    std::vector<std::string> header, cells;
    std::size_t line = 0;
    BASIN_CHECK(read_csv_record(in, ',', true, header, line, file), file.string(), ": empty");
    std::vector<std::map<std::string, std::string>> rows;
    while (read_csv_record(in, ',', true, cells, line, file)) {
        if (cells.size() == 1 && cells[0].empty()) continue;
        BASIN_CHECK(cells.size() == header.size(), file.string(), ":", line, ": expected ", header.size(), " fields");
        std::map<std::string, std::string> row;
        for (std::size_t i = 0; i < header.size(); ++i) row[header[i]] = cells[i];
        rows.push_back(row);
    }
    return rows;
}

double number(const std::string& text) { return std::stod(text); }

} // namespace

JobResults collect_results(const Job& job) {
    JobResults r;
    auto metric = [&](const std::string& subject, const std::string& dataset, const std::string& name, double value) {
        r.metrics.push_back({job.id, subject, dataset, name, value});
    };
    if (job.kind == "finetune") {
        const json run = read_json(job.output / "basin_run.json");
        const std::string model = job.labels.at("model"), dataset = job.labels.at("dataset");
        const auto& last = run.at("epochs").back();
        if (last.contains("eval_accuracy")) metric(model, dataset, "accuracy", last["eval_accuracy"].get<double>());
        if (last.contains("eval_loss")) metric(model, dataset, "loss", last["eval_loss"].get<double>());
        metric(model, dataset, "train_loss", last.at("train_loss").get<double>());
        const std::string hash = checkpoint_weights_sha256(job.output);
        json provenance = {{"command", run.value("command", "")}, {"labels", job.labels}};
        r.models.push_back({job.output.string(), hash, job.id, provenance.dump()});
    } else if (job.kind == "map") {
        const json s = read_json(job.output / "summary.json");
        for (const auto& [kind, methods] : s.at("clustering_accuracy").items())
            for (const auto& [method, value] : methods.items())
                if (value.is_number()) metric("map", "", "clustering_accuracy/" + kind + "/" + method, value.get<double>());
        for (const auto& [kind, table] : s.at("similarity_within_between").items()) {
            metric("map", "", "within/" + kind, table.at("within_mean").get<double>());
            metric("map", "", "between/" + kind, table.at("between_mean").get<double>());
        }
        // the cosine matrix (upper triangle) and the 2-D coordinates go into the store too, so that
        // the report needs nothing but the store
        for (const auto& row : read_csv(job.output / "similarity.csv")) {
            const std::string& a = row.at("model");
            for (const auto& [b, value] : row)
                if (b != "model" && a < b) metric(a, b, "cosine", number(value));
        }
        for (const auto& row : read_csv(job.output / "embedding.csv")) {
            json fields = json::object();
            for (const auto& [column, value] : row)
                if (column != "model") fields[column] = value;
            r.points.push_back({job.id, row.at("model"), "embedding", fields.dump()});
        }
    } else if (job.kind == "interpolate" || job.kind == "extrapolate") {
        for (const auto& row : read_csv(job.output / "scores.csv")) {
            const double a = number(row.at("alpha"));
            const std::string name = "alpha=" + row.at("alpha");
            metric(name, row.at("dataset"), "loss", number(row.at("loss")));
            metric(name, row.at("dataset"), "accuracy", number(row.at("accuracy")));
            if (r.points.empty() || r.points.back().name != name)
                r.points.push_back({job.id, name, job.kind, json({{job.labels.at("A"), 1 - a}, {job.labels.at("B"), a}}).dump()});
        }
    } else if (job.kind == "hull") {
        for (const auto& row : read_csv(job.output / "scores.csv")) {
            metric(row.at("point"), row.at("dataset"), "loss", number(row.at("loss")));
            metric(row.at("point"), row.at("dataset"), "accuracy", number(row.at("accuracy")));
            if (r.points.empty() || r.points.back().name != row.at("point"))
                r.points.push_back({job.id, row.at("point"), row.at("set"), json(row.at("weights")).dump()});
        }
        const json s = read_json(job.output / "summary.json");
        for (const auto& [dataset, table] : s.at("pb").items())
            for (const auto& [name, value] : table.items()) {
                metric("pb", dataset, name, value.at("value").get<double>());
                metric("pb", dataset, name + " pairs", value.at("pairs").get<double>());
            }
    } else if (job.kind == "plane") {
        for (const auto& row : read_csv(job.output / "grid.csv")) {
            const std::string name = "(" + row.at("i") + "," + row.at("j") + ")";
            metric(name, row.at("dataset"), "loss", number(row.at("loss")));
            metric(name, row.at("dataset"), "accuracy", number(row.at("accuracy")));
            if (r.points.empty() || r.points.back().name != name)
                r.points.push_back({job.id, name, "plane", json({{"u", number(row.at("u"))}, {"v", number(row.at("v"))}}).dump()});
        }
        const json summary = read_json(job.output / "summary.json"); // named: a range-for over a temporary's member dangles
        for (const auto& mk : summary.at("markers"))
            r.points.push_back({job.id, "marker:" + mk.at("model").get<std::string>(), "marker",
                                json({{"u", mk.at("u")}, {"v", mk.at("v")}}).dump()});
    } else if (job.kind == "centroid") {
        const json s = read_json(job.output / "summary.json");
        for (const auto& row : s.at("rows")) {
            const std::string target = row.at("target");
            for (const auto& c : row.at("candidates")) {
                metric(c.at("name"), target, "accuracy_mean", c.at("mean").get<double>());
                metric(c.at("name"), target, "accuracy_std", c.at("std").get<double>());
                for (std::size_t i = 0; i < c.at("accuracy").size(); ++i)
                    metric(c.at("name"), target, "accuracy_run" + std::to_string(i + 1), c.at("accuracy")[i].get<double>());
            }
            metric("centroid - pretrained", target, "difference", row.at("mean_difference").get<double>());
            metric("centroid - pretrained", target, "p_value", row.at("p_value").get<double>());
        }
    } else {
        fail("job ", job.id, ": unknown kind ", job.kind);
    }
    return r;
}

} // namespace basin
