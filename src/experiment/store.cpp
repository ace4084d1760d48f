#include "basin/experiment/store.h"

#include "basin/core/error.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <functional>
#include <random>
#include <sqlite3.h>
#include <thread>
#include <unistd.h>

namespace basin {

namespace {

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A prepared statement with positional binding, finalised on scope exit.
class Statement {
  public:
    Statement(sqlite3* db, const std::string& sql, const std::string& file) : db_(db), file_(file) {
        BASIN_CHECK(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) == SQLITE_OK, file, ": ",
                    sqlite3_errmsg(db));
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement& bind(int i, const std::string& v) {
        sqlite3_bind_text(stmt_, i, v.c_str(), int(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Statement& bind(int i, double v) {
        sqlite3_bind_double(stmt_, i, v);
        return *this;
    }
    bool step() { // true while rows come
        const int rc = sqlite3_step(stmt_);
        BASIN_CHECK(rc == SQLITE_ROW || rc == SQLITE_DONE, file_, ": ", sqlite3_errmsg(db_));
        return rc == SQLITE_ROW;
    }
    void run() { // to completion, then ready to be bound and run again
        while (step()) {
        }
        sqlite3_reset(stmt_);
    }
    std::string text(int col) const {
        const auto* t = sqlite3_column_text(stmt_, col);
        return t ? std::string(reinterpret_cast<const char*>(t), std::size_t(sqlite3_column_bytes(stmt_, col))) : "";
    }
    double number(int col) const { return sqlite3_column_double(stmt_, col); }

  private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
    std::string file_;
};

JobRecord read_job(const Statement& s) {
    JobRecord j;
    j.id = s.text(0), j.kind = s.text(1), j.key = s.text(2), j.state = s.text(3), j.error = s.text(4);
    j.output = s.text(5), j.started = s.number(6), j.finished = s.number(7), j.seconds = s.number(8);
    j.attempts = int(s.number(9));
    j.labels = s.text(10);
    return j;
}

constexpr const char* kJobColumns = "id, kind, key, state, error, output, started, finished, seconds, attempts, labels";

} // namespace

Store::Store(const std::filesystem::path& file, Mode mode) : file_(file) {
    const bool writes = mode == Mode::read_write;
    if (writes) std::filesystem::create_directories(file.parent_path());
    BASIN_CHECK(sqlite3_open_v2(file.c_str(), &db_,
                                writes ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY,
                                nullptr) == SQLITE_OK,
                file.string(), ": cannot open the store (", db_ ? sqlite3_errmsg(db_) : "out of memory", ")");
    sqlite3_busy_timeout(db_, 10000);
    if (!writes) return; // no pragma, no schema: nothing is written (tables a newer basin adds may be absent)
    // WAL with full sync: a committed transaction survives a crash of the process or the machine.
    // Runners that open a new store at the same moment race for the journal-mode switch, where
    // SQLite can answer SQLITE_BUSY without calling the busy handler: that setup is retried.
    setup_retrying("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    setup_retrying(
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
        "CREATE TABLE IF NOT EXISTS jobs(id TEXT PRIMARY KEY, kind TEXT, key TEXT, state TEXT, error TEXT, output TEXT,"
        " started REAL, finished REAL, seconds REAL, attempts INTEGER DEFAULT 0, labels TEXT DEFAULT '{}');"
        "CREATE TABLE IF NOT EXISTS models(path TEXT PRIMARY KEY, sha256 TEXT, job TEXT, provenance TEXT);"
        "CREATE TABLE IF NOT EXISTS points(job TEXT, name TEXT, point_set TEXT, coefficients TEXT, PRIMARY KEY(job, "
        "name));"
        "CREATE TABLE IF NOT EXISTS metrics(job TEXT, subject TEXT, dataset TEXT, metric TEXT, value REAL,"
        " PRIMARY KEY(job, subject, dataset, metric));"
        "CREATE TABLE IF NOT EXISTS claims(job TEXT PRIMARY KEY, host TEXT, pid INTEGER, token TEXT, heartbeat REAL);"
        "CREATE TABLE IF NOT EXISTS pieces(job TEXT, key TEXT, path TEXT, content TEXT, PRIMARY KEY(job, path));");
}

Store::~Store() {
    sqlite3_close(db_);
}

void Store::setup_retrying(const std::string& sql) {
    for (int attempt = 0;; ++attempt) {
        char* message = nullptr;
        const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
        const std::string text = message ? message : sqlite3_errstr(rc);
        sqlite3_free(message);
        if (rc == SQLITE_OK) return;
        const bool busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        if (!busy || attempt >= 400) throw Error(file_.string() + ": " + text); // 400 x 25 ms: 10 s
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
}

void Store::exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string text = message ? message : "unknown error";
        sqlite3_free(message);
        throw Error(file_.string() + ": " + text);
    }
}

std::optional<JobRecord> Store::job(const std::string& id) const {
    Statement s(db_, std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?", file_.string());
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_job(s);
}

std::vector<JobRecord> Store::jobs() const {
    Statement s(db_, std::string("SELECT ") + kJobColumns + " FROM jobs ORDER BY id", file_.string());
    std::vector<JobRecord> out;
    while (s.step())
        out.push_back(read_job(s));
    return out;
}

void Store::set_meta(const std::string& key, const std::string& value) {
    Statement(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", file_.string())
        .bind(1, key)
        .bind(2, value)
        .run();
}

std::optional<std::string> Store::meta(const std::string& key) const {
    Statement s(db_, "SELECT value FROM meta WHERE key = ?", file_.string());
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

void Store::job_started(const std::string& id, const std::string& kind, const std::string& key,
                        const std::string& output, const std::string& labels) {
    Statement(
        db_,
        "INSERT INTO jobs(id, kind, key, state, error, output, started, attempts, labels)"
        " VALUES(?, ?, ?, 'running', '', ?, ?, 1, ?)"
        " ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, key = excluded.key, state = 'running', error = '',"
        " output = excluded.output, started = excluded.started, attempts = attempts + 1, labels = excluded.labels",
        file_.string())
        .bind(1, id)
        .bind(2, kind)
        .bind(3, key)
        .bind(4, output)
        .bind(5, now_seconds())
        .bind(6, labels)
        .run();
}

RunnerId RunnerId::current() {
    static const RunnerId me = [] {
        RunnerId id;
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        id.host = host;
        id.pid = long(::getpid());
        std::random_device entropy;
        id.token = std::to_string(entropy()) + "-" + std::to_string(entropy());
        return id;
    }();
    return me;
}

// BEGIN IMMEDIATE (the write lock at once: runners decide one at a time), body, COMMIT; any error
// rolls the whole body back and propagates.
void Store::transaction(const std::function<void()>& body) {
    exec("BEGIN IMMEDIATE");
    try {
        body();
        exec("COMMIT");
    } catch (...) {
        exec("ROLLBACK");
        throw;
    }
}

bool Store::claim(const std::string& job, const RunnerId& me, double stale_seconds) {
    bool claimed = false;
    transaction([&] { // one runner at a time decides
        bool held_elsewhere = false;
        {
            Statement q(db_, "SELECT host, pid, token, heartbeat FROM claims WHERE job = ?", file_.string());
            q.bind(1, job);
            if (q.step() && q.text(2) != me.token) {
                const bool fresh = now_seconds() - q.number(3) < stale_seconds;
                // on this host a holder whose process is gone is dead at once, whatever its heartbeat
                const bool gone = q.text(0) == me.host && ::kill(pid_t(q.number(1)), 0) != 0 && errno == ESRCH;
                held_elsewhere = fresh && !gone;
            }
        }
        if (held_elsewhere) return; // nothing written: the commit changes nothing
        Statement(db_, "INSERT OR REPLACE INTO claims(job, host, pid, token, heartbeat) VALUES(?, ?, ?, ?, ?)",
                  file_.string())
            .bind(1, job)
            .bind(2, me.host)
            .bind(3, double(me.pid))
            .bind(4, me.token)
            .bind(5, now_seconds())
            .run();
        claimed = true;
    });
    return claimed;
}

void Store::heartbeat(const RunnerId& me) {
    Statement(db_, "UPDATE claims SET heartbeat = ? WHERE token = ?", file_.string())
        .bind(1, now_seconds())
        .bind(2, me.token)
        .run();
}

void Store::release(const std::string& job, const RunnerId& me) {
    Statement(db_, "DELETE FROM claims WHERE job = ? AND token = ?", file_.string())
        .bind(1, job)
        .bind(2, me.token)
        .run();
}

void Store::release_all(const RunnerId& me) {
    Statement(db_, "DELETE FROM claims WHERE token = ?", file_.string()).bind(1, me.token).run();
}

void Store::job_finished(const std::string& id, const std::string& key, double seconds, const JobResults& r) {
    transaction([&] {
        for (const char* table : {"metrics", "points", "models", "pieces"})
            Statement(db_, std::string("DELETE FROM ") + table + " WHERE job = ?", file_.string()).bind(1, id).run();
        {
            Statement s(db_, "INSERT INTO metrics(job, subject, dataset, metric, value) VALUES(?, ?, ?, ?, ?)",
                        file_.string());
            for (const auto& m : r.metrics) {
                s.bind(1, id).bind(2, m.subject).bind(3, m.dataset).bind(4, m.metric).bind(5, m.value).run();
            }
        }
        for (const auto& p : r.points)
            Statement(db_, "INSERT INTO points(job, name, point_set, coefficients) VALUES(?, ?, ?, ?)", file_.string())
                .bind(1, id)
                .bind(2, p.name)
                .bind(3, p.set)
                .bind(4, p.coefficients)
                .run();
        for (const auto& m : r.models)
            Statement(db_, "INSERT OR REPLACE INTO models(path, sha256, job, provenance) VALUES(?, ?, ?, ?)",
                      file_.string())
                .bind(1, m.path)
                .bind(2, m.sha256)
                .bind(3, id)
                .bind(4, m.provenance)
                .run();
        Statement(db_, "UPDATE jobs SET state = 'done', key = ?, error = '', finished = ?, seconds = ? WHERE id = ?",
                  file_.string())
            .bind(1, key)
            .bind(2, now_seconds())
            .bind(3, seconds)
            .bind(4, id)
            .run();
        end_claim(id);
    });
}

void Store::job_failed(const std::string& id, const std::string& key, double seconds, const std::string& error) {
    transaction([&] {
        Statement(db_, "UPDATE jobs SET state = 'failed', key = ?, error = ?, finished = ?, seconds = ? WHERE id = ?",
                  file_.string())
            .bind(1, key)
            .bind(2, error)
            .bind(3, now_seconds())
            .bind(4, seconds)
            .bind(5, id)
            .run();
        end_claim(id);
    });
}

// Inside the transaction that records a job's end: no runner can find the job unclaimed and not
// yet ended, and run it again.
void Store::end_claim(const std::string& id) {
    Statement(db_, "DELETE FROM claims WHERE job = ?", file_.string()).bind(1, id).run();
}

void Store::job_interrupted(const std::string& id, const std::string& why) {
    Statement(db_, "UPDATE jobs SET state = 'interrupted', error = ? WHERE id = ?", file_.string())
        .bind(1, why)
        .bind(2, id)
        .run();
}

void Store::job_blocked(const std::string& id, const std::string& waiting_for) {
    Statement(
        db_,
        "INSERT INTO jobs(id, state, error) VALUES(?, 'blocked', ?) ON CONFLICT(id) DO UPDATE SET state = 'blocked',"
        " error = excluded.error",
        file_.string())
        .bind(1, id)
        .bind(2, "needs " + waiting_for + ", which failed")
        .run();
}

std::vector<Metric> Store::metrics(const std::string& prefix) const {
    Statement s(db_,
                "SELECT job, subject, dataset, metric, value FROM metrics WHERE substr(job, 1, length(?)) = ?"
                " ORDER BY job, subject, dataset, metric",
                file_.string());
    s.bind(1, prefix).bind(2, prefix);
    std::vector<Metric> out;
    while (s.step())
        out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.number(4)});
    return out;
}

std::vector<PointRecord> Store::points(const std::string& prefix) const {
    Statement s(
        db_,
        "SELECT job, name, point_set, coefficients FROM points WHERE substr(job, 1, length(?)) = ? ORDER BY job, rowid",
        file_.string());
    s.bind(1, prefix).bind(2, prefix);
    std::vector<PointRecord> out;
    while (s.step())
        out.push_back({s.text(0), s.text(1), s.text(2), s.text(3)});
    return out;
}

void Store::put_piece(const std::string& job, const std::string& key, const PieceRecord& piece) {
    Statement(db_, "INSERT OR REPLACE INTO pieces(job, key, path, content) VALUES(?, ?, ?, ?)", file_.string())
        .bind(1, job)
        .bind(2, key)
        .bind(3, piece.path)
        .bind(4, piece.content)
        .run();
}

std::vector<PieceRecord> Store::pieces(const std::string& job, const std::string& key) const {
    Statement s(db_, "SELECT path, content FROM pieces WHERE job = ? AND key = ? ORDER BY path", file_.string());
    s.bind(1, job).bind(2, key);
    std::vector<PieceRecord> out;
    while (s.step())
        out.push_back({s.text(0), s.text(1)});
    return out;
}

std::vector<ModelRecord> Store::models() const {
    Statement s(db_, "SELECT path, sha256, job, provenance FROM models ORDER BY path", file_.string());
    std::vector<ModelRecord> out;
    while (s.step())
        out.push_back({s.text(0), s.text(1), s.text(2), s.text(3)});
    return out;
}

} // namespace basin
