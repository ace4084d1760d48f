#include "basin/experiment/runner.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fnmatch.h>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/prctl.h>
#include <unistd.h>

#ifdef BASIN_WITH_MPI
#include <mpi.h>
#endif

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/interrupt.h"
#include "basin/core/limits.h"
#include "basin/core/mpi.h"
#include "basin/core/process.h"
#include "basin/core/strings.h"
#include "basin/data/dataset.h"
#include "basin/experiment/job_kinds.h"
#include "basin/experiment/results.h"
#include "basin/io/checkpoint.h"

namespace basin {

namespace {

using Clock = std::chrono::steady_clock;

// What the report says about the start model (size and pretraining budget), kept in the store so
// that the report needs nothing else: its config.json and, for a basin-pretrained model, the
// pretraining run's steps and tokens.
std::string describe_base_model(const fs::path& base) {
    nlohmann::json out = nlohmann::json::object();
    out["path"] = base.string();
    if (fs::exists(base / "config.json"))
        out["config"] =
            nlohmann::json::parse(read_text_file(base / "config.json", limits::config_json), nullptr, false);
    if (fs::exists(base / "basin_run.json")) {
        const auto run = nlohmann::json::parse(read_text_file(base / "basin_run.json"), nullptr, false);
        if (run.is_object() && run.contains("heldout") && run["heldout"].is_array() && !run["heldout"].empty()) {
            const auto& last = run["heldout"].back();
            out["pretraining"] = {{"steps", last.value("step", 0)},
                                  {"tokens_seen", last.value("tokens_seen", 0)},
                                  {"heldout_mlm_accuracy", last.value("accuracy", 0.0)}};
        }
    }
    return out.dump();
}

// Facts about each dataset for the report: sizes, classes and the majority-class accuracy on
// the test split (the floor a fine-tuned model must beat to have learned anything).
std::string describe_datasets(const ExperimentSpec& spec) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& d : spec.datasets) {
        const Dataset train = read_dataset(find_split(spec.data_root / d.name, "train"));
        const Dataset test = read_dataset(find_split(spec.data_root / d.name, "test"));
        std::map<std::string, std::size_t> counts;
        for (const auto& ex : test.examples)
            ++counts[ex.label];
        std::size_t most = 0;
        for (const auto& [label, n] : counts)
            most = std::max(most, n);
        out[d.name] = {
            {"family", d.family},
            {"train_examples", train.examples.size()},
            {"test_examples", test.examples.size()},
            {"classes", counts.size()},
            {"majority_accuracy", test.examples.empty() ? 0.0 : double(most) / double(test.examples.size())}};
    }
    return out.dump();
}

std::string log_name(const std::string& id) {
    std::string s = id;
    for (char& c : s)
        if (c == '/') c = '_';
    return s + ".log";
}

void write_prepared(const Job& job) {
    for (const auto& [path, content] : job.prepared) {
        fs::create_directories(path.parent_path());
        if (fs::exists(path) && read_text_file(path) == content) continue;
        write_text_atomically(path, content);
    }
}

// Done: recorded as done under the same key, its output present and, for a model, its weights
// still those recorded (a checkpoint damaged or truncated since is made again, not used).
bool done_in_store(const Store& store, const Job& job) {
    const auto record = store.job(job.id);
    if (!record || record->state != "done" || record->key != job.key || !fs::exists(job.output)) return false;
    for (const auto& m : store.models())
        if (m.job == job.id && m.sha256 != checkpoint_weights_sha256(job.output)) return false;
    return true;
}

// Pieces (JobKindEntry::pieces): whether rel (a path relative to a job's output folder, from the
// folder or from a store) is one of the kind's pieces. No component may be empty, '.' or '..', so
// a piece from a stranger's store is written inside the output folder or not at all.
bool is_piece(const char* pattern, const std::string& rel) {
    if (!pattern || rel.empty() || rel.front() == '/') return false;
    for (const auto& part : fs::path(rel))
        if (part.empty() || part == "." || part == "..") return false;
    return ::fnmatch(pattern, rel.c_str(), FNM_PATHNAME | FNM_PERIOD) == 0;
}

std::vector<PieceRecord> pieces_in(const Job& job) {
    std::vector<PieceRecord> out;
    const char* pattern = job_kind(job.kind).pieces;
    std::error_code ec;
    if (!pattern || !fs::is_directory(job.output, ec)) return out;
    for (auto it = fs::recursive_directory_iterator(job.output, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        const std::string rel = it->path().lexically_relative(job.output).string();
        if (is_piece(pattern, rel)) out.push_back({rel, read_text_file(it->path())});
    }
    return out;
}

// Before an attempt: the pieces an earlier attempt under the same key left in the store, written
// where they were unless the folder has them already. Returns how many were written.
std::size_t restore_pieces(const Store& store, const Job& job) {
    const char* pattern = job_kind(job.kind).pieces;
    if (!pattern) return 0;
    std::size_t written = 0;
    for (const auto& p : store.pieces(job.id, job.key)) {
        BASIN_CHECK(is_piece(pattern, p.path), store.file().string(), ": job ", job.id, ": piece '", p.path,
                    "' is not a path of the form ", pattern, " inside its output folder");
        const fs::path target = job.output / p.path;
        if (fs::exists(target)) continue;
        fs::create_directories(target.parent_path());
        write_text_atomically(target, p.content);
        ++written;
    }
    return written;
}

struct Finished {
    std::size_t index;
    int code;
    double seconds;
    std::string error;
};

// Where jobs run: child processes here, or MPI worker ranks.
class Executor {
  public:
    virtual ~Executor() = default;
    // Slots: jobs at once, a job filling cost(job) of them.
    virtual std::size_t capacity() const = 0;
    virtual std::size_t cost(const Job& job) const = 0;
    virtual void start(std::size_t index, const Job& job, const fs::path& log) = 0;
    // The next job to end; index kNone when a SIGINT/SIGTERM arrived first, kTimeout when none
    // ended within `seconds` (the scheduler then looks at the store again).
    virtual Finished wait_any(double seconds) = 0;
    // Passes the signal on to every running job and returns their indices.
    virtual std::vector<std::size_t> stop(int signal) = 0;
    static constexpr std::size_t kNone = std::size_t(-1), kTimeout = std::size_t(-2);
};

// Every 15 s while jobs run: one line per running job with its time so far and the last line of
// its log (the command's own progress), so a long job shows where it is.
class Ticker {
  public:
    explicit Ticker(std::function<void(const std::string&)> say) : say_(std::move(say)) {}
    void started(std::size_t index, const std::string& id, const fs::path& log) {
        running_[index] = {id, log, Clock::now()};
    }
    void finished(std::size_t index) { running_.erase(index); }
    void tick() {
        if (!say_ || std::chrono::duration<double>(Clock::now() - last_).count() < 15) return;
        last_ = Clock::now();
        for (const auto& [index, r] : running_)
            say_("  " + r.id + ": " + duration_text(std::chrono::duration<double>(Clock::now() - r.since).count()) +
                 " so far; " + last_line(r.log));
    }

  private:
    struct Running {
        std::string id;
        fs::path log;
        Clock::time_point since;
    };
    std::function<void(const std::string&)> say_;
    std::map<std::size_t, Running> running_;
    Clock::time_point last_ = Clock::now();
};

class LocalExecutor : public Executor {
  public:
    LocalExecutor(fs::path program, int jobs, Ticker& ticker)
        : program_(std::move(program)), jobs_(std::max(1, jobs)), ticker_(ticker) {}
    std::size_t capacity() const override { return std::size_t(jobs_); }
    // A job running several processes (a centroid's workers) shares this machine's cores with the
    // others; one wider than --jobs runs alone.
    std::size_t cost(const Job& job) const override { return std::clamp<std::size_t>(job.slots, 1, capacity()); }
    void start(std::size_t index, const Job& job, const fs::path& log) override {
        children_.start(index, program_, job.args, log);
        ticker_.started(index, job.id, log);
    }
    Finished wait_any(double seconds) override {
        const auto ended = children_.wait_any(seconds, [this] { ticker_.tick(); });
        if (!ended) return {interrupted() ? kNone : kTimeout, 0, 0, ""};
        ticker_.finished(ended->tag);
        return {ended->tag, ended->code, ended->seconds, ended->code ? last_line(ended->log) : ""};
    }
    std::vector<std::size_t> stop(int signal) override {
        const auto stopped = children_.stop(signal);
        for (const std::size_t index : stopped)
            ticker_.finished(index);
        return stopped;
    }

  private:
    fs::path program_;
    int jobs_;
    Ticker& ticker_;
    ChildSet children_;
};

#ifdef BASIN_WITH_MPI
// Messages: a job for a worker is (index, log path, program, args...) joined by '\0'; a result is
// (index, exit code, seconds, error). Tag 1: job, tag 2: result, tag 3: stop.
std::string pack(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts)
        out += p + '\0';
    return out;
}

std::vector<std::string> unpack(const std::string& text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size(); ++i)
        if (text[i] == '\0') parts.push_back(text.substr(start, i - start)), start = i + 1;
    return parts;
}

std::string receive(int source, int tag, MPI_Status* status) {
    MPI_Status probe;
    MPI_Probe(source, tag, MPI_COMM_WORLD, &probe);
    int size = 0;
    MPI_Get_count(&probe, MPI_CHAR, &size);
    std::string buffer(std::size_t(size), '\0');
    MPI_Recv(buffer.data(), size, MPI_CHAR, probe.MPI_SOURCE, probe.MPI_TAG, MPI_COMM_WORLD, status);
    return buffer;
}

class MpiExecutor : public Executor {
  public:
    MpiExecutor(fs::path program, int ranks, Ticker& ticker) : program_(std::move(program)), ticker_(ticker) {
        for (int r = 1; r < ranks; ++r)
            idle_.insert(r);
    }
    std::size_t capacity() const override { return idle_.size() + busy_; }
    // A rank runs one job at a time, with its host's cores to itself as far as this runner knows.
    std::size_t cost(const Job&) const override { return 1; }
    void start(std::size_t index, const Job& job, const fs::path& log) override {
        BASIN_CHECK(!idle_.empty(), "basin run: no idle MPI rank");
        const int rank = *idle_.begin();
        idle_.erase(idle_.begin());
        ++busy_;
        std::vector<std::string> parts = {std::to_string(index), log.string(), program_.string()};
        parts.insert(parts.end(), job.args.begin(), job.args.end());
        const std::string message = pack(parts);
        MPI_Send(message.data(), int(message.size()), MPI_CHAR, rank, 1, MPI_COMM_WORLD);
        ticker_.started(index, job.id, log);
        running_[rank] = index;
    }
    Finished wait_any(double seconds) override {
        MPI_Status status;
        const auto until = Clock::now() + std::chrono::duration<double>(seconds);
        for (int ready = 0;;) {
            MPI_Iprobe(MPI_ANY_SOURCE, 2, MPI_COMM_WORLD, &ready, &status);
            if (ready) break;
            if (interrupted()) return {kNone, 0, 0, ""};
            if (Clock::now() > until) return {kTimeout, 0, 0, ""};
            ticker_.tick();
            ::usleep(100'000);
        }
        const auto parts = unpack(receive(status.MPI_SOURCE, 2, &status));
        ticker_.finished(std::stoul(parts.at(0)));
        idle_.insert(status.MPI_SOURCE);
        running_.erase(status.MPI_SOURCE);
        --busy_;
        return {std::stoul(parts.at(0)), std::stoi(parts.at(1)), std::stod(parts.at(2)), parts.at(3)};
    }

    // The worker ranks received the signal from mpirun themselves (they keep the default action);
    // their jobs die with them.
    std::vector<std::size_t> stop(int) override {
        std::vector<std::size_t> stopped;
        for (const auto& [rank, index] : running_)
            stopped.push_back(index);
        return stopped;
    }

  private:
    fs::path program_;
    Ticker& ticker_;
    std::map<int, std::size_t> running_; // rank -> job index
    std::set<int> idle_;
    std::size_t busy_ = 0;
};

// A worker rank: runs what rank 0 sends until told to stop.
void mpi_worker() {
    std::signal(SIGINT, SIG_DFL); // a worker stops at once; its jobs die with it (PDEATHSIG)
    std::signal(SIGTERM, SIG_DFL);
    while (true) {
        MPI_Status status;
        MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
        const std::string text = receive(0, status.MPI_TAG, &status);
        if (status.MPI_TAG == 3) return;
        const auto parts = unpack(text);
        const auto start = Clock::now();
        const std::vector<std::string> args(parts.begin() + 3, parts.end());
        const int code = wait_for(spawn(parts.at(2), args, parts.at(1)));
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        const std::string reply =
            pack({parts.at(0), std::to_string(code), std::to_string(seconds), code ? last_line(parts.at(1)) : ""});
        MPI_Send(reply.data(), int(reply.size()), MPI_CHAR, 0, 2, MPI_COMM_WORLD);
    }
}

#endif

// Claims: a runner refreshes its claims this often; one not refreshed for kStaleClaimSeconds
// belongs to a runner taken for dead (on another host; on this one a missing process is dead at
// once). While its jobs run, a runner looks at the store again every kRescanSeconds.
constexpr double kHeartbeatSeconds = 10, kStaleClaimSeconds = 120, kRescanSeconds = 5;

// One runner's pass over the jobs: start every job whose dependencies are done, up to the
// executor's capacity, record each end in the store, until nothing is left that this runner can
// run. Other runners on the same store: a job is claimed before it starts; one that another live
// runner holds is left to it, and one it finished is taken as done. Whatever ends the pass (an
// error, a signal) releases this runner's claims.
class Scheduler {
  public:
    Scheduler(const ExperimentSpec& spec, const std::vector<Job>& jobs, Store& store, Executor& executor,
              const RunOptions& o)
        : spec_(spec), jobs_(jobs), store_(store), executor_(executor), o_(o), me_(RunnerId::current()),
          state_(jobs.size(), State::Pending) {
        for (std::size_t i = 0; i < jobs.size(); ++i)
            index_of_[jobs[i].id] = i;
        for (std::size_t i = 0; i < jobs.size(); ++i)
            if (done_in_store(store, jobs[i])) state_[i] = State::Done, ++done_, ++skipped_;
    }
    ~Scheduler() {
        try {
            store_.release_all(me_);
        } catch (...) {
        }
    }
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // the jobs failed or blocked
    int run() {
        if (skipped_) progress(std::to_string(skipped_) + " finished earlier, skipped");
        while (true) {
            const Started started = start_ready();
            if (running_ == 0) {
                if (started.blocked_any) continue; // blocking may unblock nothing but changes what is left
                if (!started.held_elsewhere || interrupted()) break;
                // everything left is held by other runners or waits on what they hold
                beat();
                for (int slept = 0; slept < 10 && !interrupted(); ++slept)
                    ::usleep(100'000);
                if (interrupted()) break;
                continue;
            }
            const Finished f = executor_.wait_any(kRescanSeconds);
            beat();
            if (f.index == Executor::kTimeout) { // look at the store again: others may have finished jobs
                keep_running_pieces();
                continue;
            }
            if (f.index == Executor::kNone) throw stop_run(); // SIGINT/SIGTERM
            record_end(f);
        }
        if (interrupted()) throw stop_run(); // a signal while waiting on other runners: nothing of this one's runs
        for (std::size_t i = 0; i < jobs_.size(); ++i)
            if (state_[i] == State::Pending) ++failed_; // unreachable: kept for safety
        if (!o_.quiet)
            std::fprintf(
                stderr,
                "%s: %zu of %zu jobs done (%zu skipped as finished earlier%s), %zu failed or blocked; store %s\n",
                spec_.name.c_str(), done_, jobs_.size(), skipped_,
                elsewhere_ ? (", " + std::to_string(elsewhere_) + " by other runners").c_str() : "", failed_,
                store_file(spec_).c_str());
        return int(failed_);
    }

  private:
    enum class State { Pending, Running, Done, Failed };
    struct Started {
        bool blocked_any = false, held_elsewhere = false;
    };

    void progress(const std::string& what) const {
        if (o_.quiet) return;
        const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
        const std::size_t width = 30, filled = jobs_.empty() ? width : width * done_ / jobs_.size();
        std::fprintf(stderr, "[%s%s] %zu/%zu jobs, %s elapsed  %s\n", std::string(filled, '#').c_str(),
                     std::string(width - filled, '.').c_str(), done_, jobs_.size(), duration_text(elapsed).c_str(),
                     what.c_str());
    }

    void beat() {
        if (std::chrono::duration<double>(Clock::now() - last_beat_).count() < kHeartbeatSeconds) return;
        store_.heartbeat(me_);
        last_beat_ = Clock::now();
    }

    // SIGINT/SIGTERM: stop the running jobs cleanly, keep what is done
    Interrupted stop_run() {
        const int signal = interrupt_signal();
        const std::string why = "interrupted by " + signal_name(signal);
        const auto stopped = executor_.stop(signal);
        for (std::size_t i : stopped) {
            keep_pieces(i);
            store_.job_interrupted(jobs_[i].id, why);
        }
        return Interrupted(signal,
                           why + ": " + std::to_string(done_) + " of " + std::to_string(jobs_.size()) + " jobs done" +
                               (stopped.empty() ? "" : ", " + std::to_string(stopped.size()) + " running stopped") +
                               "; the same `basin run` resumes");
    }

    // Every pending job whose dependencies are done, claimed and started while there is capacity; a
    // job whose dependency failed is blocked.
    Started start_ready() {
        Started out;
        for (std::size_t i = 0; i < jobs_.size() && busy_ < executor_.capacity() && !interrupted(); ++i) {
            if (state_[i] != State::Pending) continue;
            bool ready = true;
            for (const auto& d : jobs_[i].depends) {
                const State s = state_.at(index_of_.at(d));
                if (s == State::Failed) {
                    store_.job_blocked(jobs_[i].id, d);
                    state_[i] = State::Failed, ++failed_, out.blocked_any = true;
                    ready = false;
                    break;
                }
                ready = ready && s == State::Done;
            }
            if (!ready) continue;
            // A job wider than the free slots waits for them, and nothing after it starts first:
            // otherwise narrow jobs could keep taking each slot that frees and starve it.
            if (busy_ + executor_.cost(jobs_[i]) > executor_.capacity()) break;
            if (!store_.claim(jobs_[i].id, me_, kStaleClaimSeconds)) { // another runner has it
                out.held_elsewhere = true;
                continue;
            }
            if (done_in_store(store_, jobs_[i])) { // another runner finished it since this one looked
                store_.release(jobs_[i].id, me_);
                state_[i] = State::Done, ++done_, ++elsewhere_;
                progress(jobs_[i].id + " finished by another runner");
                continue;
            }
            write_prepared(jobs_[i]);
            if (const std::size_t n = restore_pieces(store_, jobs_[i]))
                progress(jobs_[i].id + ": " + std::to_string(n) + " finished pieces of an earlier attempt restored");
            store_.job_started(jobs_[i].id, jobs_[i].kind, jobs_[i].key, jobs_[i].output.string(),
                               nlohmann::json(jobs_[i].labels).dump());
            executor_.start(i, jobs_[i], spec_.out / "logs" / log_name(jobs_[i].id));
            state_[i] = State::Running, ++running_, busy_ += executor_.cost(jobs_[i]);
            progress("started " + jobs_[i].id);
        }
        return out;
    }

    // A running job's pieces into the store, each when it first appears or changes.
    void keep_pieces(std::size_t i) {
        const Job& job = jobs_[i];
        if (!job_kind(job.kind).pieces) return;
        auto& kept = kept_[i];
        for (const auto& p : pieces_in(job)) {
            const std::size_t h = std::hash<std::string>()(p.content);
            if (kept.count(p.path) && kept[p.path] == h) continue;
            store_.put_piece(job.id, job.key, p);
            kept[p.path] = h;
        }
    }
    void keep_running_pieces() {
        for (std::size_t i = 0; i < jobs_.size(); ++i)
            if (state_[i] == State::Running) keep_pieces(i);
    }

    // A job's end: its results collected into the store, or its failure recorded (either ends its claim).
    void record_end(const Finished& f) {
        const Job& job = jobs_[f.index];
        --running_, busy_ -= executor_.cost(job);
        if (f.code == 0) {
            try {
                store_.job_finished(job.id, job.key, f.seconds, collect_results(job));
                state_[f.index] = State::Done, ++done_;
                progress("finished " + job.id + " in " + duration_text(f.seconds));
                return;
            } catch (const std::exception& e) {
                store_.job_failed(job.id, job.key, f.seconds, std::string("reading its results: ") + e.what());
            }
        } else {
            keep_pieces(f.index); // the next attempt starts from them
            store_.job_failed(job.id, job.key, f.seconds, f.error);
        }
        state_[f.index] = State::Failed, ++failed_;
        progress("FAILED " + job.id + ": " + f.error);
    }

    const ExperimentSpec& spec_;
    const std::vector<Job>& jobs_;
    Store& store_;
    Executor& executor_;
    const RunOptions& o_;
    const RunnerId me_;
    const Clock::time_point start_ = Clock::now();
    Clock::time_point last_beat_ = Clock::now();
    std::map<std::string, std::size_t> index_of_;
    std::vector<State> state_;
    std::map<std::size_t, std::map<std::string, std::size_t>> kept_; // job -> piece path -> content hash
    std::size_t done_ = 0, skipped_ = 0, failed_ = 0, running_ = 0;
    std::size_t busy_ = 0;      // the executor's slots the running jobs fill
    std::size_t elsewhere_ = 0; // finished by other runners during this run
};

// --only: the jobs matching a pattern and everything they need, in the spec's order. A pattern
// that matches no job is an error that lists the kinds of ids there are.
std::vector<Job> select_jobs(const std::vector<Job>& all, const std::vector<std::string>& patterns) {
    if (patterns.empty()) return all;
    std::set<std::string> wanted;
    for (const auto& pattern : patterns) {
        bool any = false;
        for (const auto& j : all)
            if (::fnmatch(pattern.c_str(), j.id.c_str(), 0) == 0) wanted.insert(j.id), any = true;
        if (!any) {
            std::set<std::string> kinds;
            for (const auto& j : all)
                kinds.insert(j.id.substr(0, j.id.find('/')) + (j.id.find('/') == std::string::npos ? "" : "/*"));
            std::string list;
            for (const auto& k : kinds)
                list += (list.empty() ? "" : ", ") + k;
            fail("--only '", pattern, "': no job of this experiment matches (its jobs: ", list, ")");
        }
    }
    for (auto j = all.rbegin(); j != all.rend(); ++j) // dependencies come earlier in the list
        if (wanted.count(j->id)) wanted.insert(j->depends.begin(), j->depends.end());
    std::vector<Job> out;
    for (const auto& j : all)
        if (wanted.count(j.id)) out.push_back(j);
    return out;
}

int schedule(const ExperimentSpec& spec, const std::vector<Job>& jobs, Store& store, Executor& executor,
             const RunOptions& o) {
    return Scheduler(spec, jobs, store, executor, o).run();
}

} // namespace

int run_experiment(const ExperimentSpec& spec, const RunOptions& o) {
    const MpiSession mpi;
    const int ranks = mpi.size();
#ifdef BASIN_WITH_MPI
    if (mpi.active() && mpi.rank() != 0) { // workers: no store, no spec expansion beyond parsing
        mpi_worker();
        return 0;
    }
#endif
    const std::vector<Job> all = expand_jobs(spec);
    const std::vector<Job> jobs = select_jobs(all, o.only);
    int failed = 0;
    if (o.dry_run) {
        std::optional<Store> store;
        if (fs::exists(store_file(spec)))
            store.emplace(store_file(spec), Store::Mode::read_only); // a dry run writes nothing
        for (const auto& j : jobs) {
            const bool finished = store && done_in_store(*store, j);
            // the pieces an earlier attempt kept under this job's key: what its next attempt restores
            const std::size_t pieces =
                store && !finished && job_kind(j.kind).pieces ? store->pieces(j.id, j.key).size() : 0;
            std::printf("%-7s %-45s after: %s%s\n        basin", finished ? "done" : "to run", j.id.c_str(),
                        j.depends.empty() ? "-" : std::to_string(j.depends.size()).append(" jobs").c_str(),
                        pieces ? (" (" + std::to_string(pieces) + " finished pieces kept)").c_str() : "");
            for (const auto& a : j.args)
                std::printf(" %s", a.c_str());
            std::printf("\n");
        }
    } else {
        fs::create_directories(spec.out);
        Store store(store_file(spec));
        store.set_meta("spec", spec.text);
        store.set_meta("spec_file", fs::absolute(spec.file).string());
        store.set_meta("name", spec.name);
        store.set_meta("jobs", std::to_string(all.size())); // the spec's, started or not (the report's "N of M")
        store.set_meta("ranks", std::to_string(ranks));     // MPI processes of the latest run
        store.set_meta("base_model", describe_base_model(spec.base));
        store.set_meta("datasets", describe_datasets(spec));
        Ticker ticker(o.quiet ? std::function<void(const std::string&)>()
                              : [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
        if (ranks > 1) {
#ifdef BASIN_WITH_MPI
            MpiExecutor executor(o.program, ranks, ticker);
            failed = schedule(spec, jobs, store, executor, o);
#endif
        } else {
            LocalExecutor executor(o.program, o.jobs, ticker);
            failed = schedule(spec, jobs, store, executor, o);
        }
    }
#ifdef BASIN_WITH_MPI
    if (mpi.active())
        for (int r = 1; r < ranks; ++r)
            MPI_Send(nullptr, 0, MPI_CHAR, r, 3, MPI_COMM_WORLD);
#endif
    return failed;
}

void print_status(const ExperimentSpec& spec) {
    const auto jobs = expand_jobs(spec);
    if (!fs::exists(store_file(spec))) {
        std::printf("%s: not started (%zu jobs)\n", spec.name.c_str(), jobs.size());
        return;
    }
    const Store store(store_file(spec), Store::Mode::read_only); // status writes nothing
    std::map<std::string, std::size_t> counts;
    for (const auto& j : jobs) {
        const auto r = store.job(j.id);
        std::string state = r ? r->state : "pending";
        if (state == "done" && (r->key != j.key || !fs::exists(j.output))) state = "stale"; // inputs changed
        ++counts[state];
        std::printf("%-8s %-45s", state.c_str(), j.id.c_str());
        if (r && (state == "done" || state == "failed")) std::printf(" %8s", duration_text(r->seconds).c_str());
        if (r && !r->error.empty() && state != "done") std::printf("  %s", r->error.c_str());
        std::printf("\n");
    }
    std::printf("%s:", spec.name.c_str());
    for (const auto& [state, n] : counts)
        std::printf(" %zu %s", n, state.c_str());
    std::printf(" of %zu jobs\n", jobs.size());
}

} // namespace basin
