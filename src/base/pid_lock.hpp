// Purpose:   One server per data directory. `serve` holds an open file
//            description lock (a write lock, F_OFD_SETLK) on
//            DATA_DIR/hikyaku.pid for its whole life, and the file holds its
//            process id. Two servers on one spool would deliver every queued
//            message twice and delete each other's staged files; the second
//            is refused at start. The lock goes with the process however it
//            ends, so a pid file that a crash left behind names no one:
//            `reload` and `queue flush` ask the lock (F_OFD_GETLK) before
//            they trust, or signal, the pid in it.
// Standards: Linux open file description locks (fcntl(2) F_OFD_SETLK,
//            F_OFD_GETLK): owned by the open file, not by the process, so
//            no other open/close of the file in the process releases it.
// Trust:     the file is the service user's (DATA_DIR).
// Concurrency: acquire() once per process; holder() from any process.
// Errors:    Result values with errno text; a held lock is an Error that
//            names the holder's pid.
#pragma once

#include <sys/types.h>

#include <filesystem>

#include "base/file.hpp"
#include "base/result.hpp"

namespace hikyaku::base {

class PidLock {
 public:
  // Creates `path` if need be, takes the lock and writes our pid into it.
  static Result<PidLock> acquire(const std::filesystem::path& path);
  // A clean stop: the file is removed (the lock goes with the object).
  void remove();

  PidLock(PidLock&&) noexcept = default;
  PidLock& operator=(PidLock&&) noexcept = default;

 private:
  PidLock(UniqueFd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::filesystem::path path_;
};

// The process that holds the lock on `path` (its pid, from the file); an
// Error when the file is missing, nobody holds it (left by a process that
// ended) or it holds no process id.
Result<pid_t> pid_lock_holder(const std::filesystem::path& path);

}  // namespace hikyaku::base
