// Purpose:   The POP3 maildrop lock (RFC 1939 §8: "the POP3 server acquires an
//            exclusive-access lock on the maildrop"): one session per mailbox.
//            Two layers: an in-process table (sessions of this server) and a
//            flock(2) on MAILDIR/hikyaku-pop3.lock (other hikyaku processes on
//            the same host, e.g. during a restart overlap). flock locks belong
//            to the open file description, so they also exclude a second
//            session of the same process; the table keeps that true where
//            flock is emulated with POSIX locks (NFS).
// Standards: RFC 1939 §8, RFC 2449 §8.1.1 ([IN-USE]).
// Trust:     mailbox names come from the configuration (a login is mapped to
//            a [[mailbox]] before locking), never raw from the network.
// Concurrency: LockTable is thread-safe (sessions lock from worker threads);
//            a Lock is released by its destructor on any thread.
// Errors:    Result: an error when the lock file cannot be opened; a null
//            lock when the maildrop is in use.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "base/result.hpp"

namespace hikyaku::pop3 {

class LockTable {
  struct Shared {
    std::mutex mutex;
    std::set<std::string> held;
  };

 public:
  LockTable() : shared_(std::make_shared<Shared>()) {}

  class Lock {
   public:
    Lock(std::shared_ptr<Shared> shared, std::string name, int fd)
        : shared_(std::move(shared)), name_(std::move(name)), fd_(fd) {}
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    ~Lock();
    const std::string& name() const { return name_; }

   private:
    std::shared_ptr<Shared> shared_;
    std::string name_;
    int fd_;
  };

  // Lock mailbox `name` using `lock_file` (created 0600 if missing; its
  // directory must exist). nullptr: held by another session.
  base::Result<std::unique_ptr<Lock>> try_lock(const std::string& name,
                                               const std::filesystem::path& lock_file);

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace hikyaku::pop3
