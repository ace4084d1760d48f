// The results store of an experiment: one SQLite file (EXPERIMENT/store.sqlite) with the jobs
// (key, state, timings, errors), the models they made (path, content hash, provenance), the points
// of weight space they scored (coefficients) and every metric. A finished job's rows are written in
// one transaction together with its state, so a crash leaves either all of a job's results or none.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace basin {

struct JobRecord {
    std::string id, kind, key, state, error, output;
    std::string labels = "{}"; // JSON: dataset, seed, family, A, B, relation, level, ...
    double started = 0, finished = 0, seconds = 0;
    int attempts = 0;
};

struct Metric {
    std::string job, subject, dataset, metric;
    double value = 0;
};

struct PointRecord {
    std::string job, name, set, coefficients; // coefficients: JSON
};

// One piece of an unfinished job (JobKindEntry::pieces): a file under its output folder.
struct PieceRecord {
    std::string path, content; // path relative to the job's output folder
};

struct ModelRecord {
    std::string path, sha256, job, provenance; // provenance: JSON
};

// What a finished job adds to the store.
struct JobResults {
    std::vector<Metric> metrics;
    std::vector<PointRecord> points;
    std::vector<ModelRecord> models;
};

// Who runs jobs: host name, process id and a token unique to this run (pids are reused).
struct RunnerId {
    std::string host, token;
    long pid = 0;
    static RunnerId current();
};

class Store {
  public:
    enum class Mode { read_write, read_only };
    // read_write creates the file and the schema if needed; read_only (reports) changes nothing in
    // the file, so opening a committed store leaves it byte for byte as it was.
    explicit Store(const std::filesystem::path& file, Mode mode = Mode::read_write);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    const std::filesystem::path& file() const { return file_; }
    std::optional<JobRecord> job(const std::string& id) const;
    std::vector<JobRecord> jobs() const;
    void set_meta(const std::string& key, const std::string& value);
    std::optional<std::string> meta(const std::string& key) const;

    void job_started(const std::string& id, const std::string& kind, const std::string& key, const std::string& output,
                     const std::string& labels = "{}");
    // One transaction: the job's earlier results are replaced by these, it is marked done and its
    // claim ends (so does job_failed's).
    void job_finished(const std::string& id, const std::string& key, double seconds, const JobResults& results);
    void job_failed(const std::string& id, const std::string& key, double seconds, const std::string& error);
    // Stopped by SIGINT/SIGTERM: not done, not failed; the next run starts (or resumes) it.
    void job_interrupted(const std::string& id, const std::string& why);
    void job_blocked(const std::string& id, const std::string& waiting_for);

    // Claims: several runners on one experiment (Slurm array tasks, two terminals) split its jobs.
    // A runner claims a job before starting it; the claim fails while another live runner holds
    // it. A holder is live while its heartbeat is younger than stale_seconds and, on this host,
    // its process exists; a dead holder's claim is taken over. One transaction each.
    bool claim(const std::string& job, const RunnerId& me, double stale_seconds);
    void heartbeat(const RunnerId& me); // every claim of this runner is fresh again
    void release(const std::string& job, const RunnerId& me);
    void release_all(const RunnerId& me);

    std::vector<Metric> metrics(const std::string& job_prefix = "") const; // ordered by job, subject, dataset, metric
    std::vector<PointRecord> points(const std::string& job_prefix = "") const;
    std::vector<ModelRecord> models() const;

    // Pieces of a job not yet done, kept under its key; job_finished drops them.
    void put_piece(const std::string& job, const std::string& key, const PieceRecord& piece);
    std::vector<PieceRecord> pieces(const std::string& job, const std::string& key) const;

  private:
    void exec(const std::string& sql);
    void setup_retrying(const std::string& sql); // exec, retried while the store is busy (opening)
    void transaction(const std::function<void()>& body);
    void end_claim(const std::string& id);
    sqlite3* db_ = nullptr;
    std::filesystem::path file_;
};

} // namespace basin
