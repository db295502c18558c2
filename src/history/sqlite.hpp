// Purpose:   The few SQLite calls the history needs, as values: a Database
//            (owned or borrowed connection), a prepared Statement that binds,
//            steps and remembers its first error, the schema, and the time
//            encoding (integer milliseconds since the epoch, UTC).
// Trust:     SQL text is fixed here; every value is bound, never spliced.
// Concurrency: a connection is used by one thread at a time (the writer, or
//            the command that reads).
// Errors:    open/exec return Errors naming the file and SQLite's message;
//            a Statement keeps its first error for status().
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace hikyaku::history {

inline int64_t millis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline std::chrono::system_clock::time_point from_millis(int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// Version 1. `messages`: one row per message the queue took; `events`: one
// row per attempt ("attempt"), report queued ("report") or removal
// ("removed"), joined to its message by queue_id.
inline constexpr const char* kSchema = R"(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS messages (
  queue_id TEXT PRIMARY KEY, time INTEGER NOT NULL, origin TEXT NOT NULL, sender TEXT NOT NULL,
  client TEXT NOT NULL, recipients TEXT NOT NULL, from_field TEXT NOT NULL, subject TEXT NOT NULL,
  checks TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_time ON messages (time);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY, time INTEGER NOT NULL, queue_id TEXT NOT NULL, kind TEXT NOT NULL,
  recipient TEXT NOT NULL, target_kind TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL,
  reply TEXT NOT NULL, seconds REAL NOT NULL, retry INTEGER NOT NULL, next TEXT NOT NULL,
  tls INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE INDEX IF NOT EXISTS events_queue_id ON events (queue_id);
CREATE INDEX IF NOT EXISTS events_recipient ON events (recipient COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS events_diverted ON events (time) WHERE result = 'diverted';
PRAGMA user_version = 1;
)";

class Database {
 public:
  static base::Result<Database> open(const std::filesystem::path& file, bool read_only) {
    sqlite3* db = nullptr;
    const int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    const int rc = sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string why = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close(db);
      return base::make_error(file.string() + ": " + why);
    }
    sqlite3_busy_timeout(db, 5000);  // the server's writer holds its lock for one batch
    return Database(db, /*owned=*/true, file.string());
  }
  Database(sqlite3* db, bool owned, std::string name = "history") : db_(db), owned_(owned), name_(std::move(name)) {}
  Database(Database&& o) noexcept : db_(std::exchange(o.db_, nullptr)), owned_(o.owned_), name_(std::move(o.name_)) {}
  Database& operator=(Database&&) = delete;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database() {
    if (owned_) sqlite3_close(db_);
  }

  sqlite3* get() const { return db_; }
  const std::string& name() const { return name_; }
  sqlite3* release() { return std::exchange(db_, nullptr); }

  base::Status exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK) return {};
    std::string why = message != nullptr ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    return base::make_error(name_ + ": " + why);
  }

 private:
  sqlite3* db_;
  bool owned_;
  std::string name_;
};

class Statement {
 public:
  Statement(Database& db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db.get(), sql, -1, &stmt_, nullptr) != SQLITE_OK) fail();
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& bind(int i, std::string_view v) {
    if (stmt_ != nullptr && sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT))
      fail();
    return *this;
  }
  Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Statement& bind(int i, int64_t v) {
    if (stmt_ != nullptr && sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK) fail();
    return *this;
  }
  Statement& bind(int i, double v) {
    if (stmt_ != nullptr && sqlite3_bind_double(stmt_, i, v) != SQLITE_OK) fail();
    return *this;
  }
  // One row: true while there is one. A query that is done (or failed) resets.
  bool step() {
    if (stmt_ == nullptr) return false;
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail();
    sqlite3_reset(stmt_);
    return false;
  }
  // A statement without rows (INSERT, DELETE): step it and reset it for the
  // next bindings.
  void run() {
    while (step()) {
    }
  }
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p),
                                                      static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  base::Status status() const {
    if (error_.empty()) return {};
    return base::make_error(db_.name() + ": " + error_);
  }

 private:
  void fail() {
    if (error_.empty()) error_ = sqlite3_errmsg(db_.get());
  }
  Database& db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string error_;
};

}  // namespace hikyaku::history
