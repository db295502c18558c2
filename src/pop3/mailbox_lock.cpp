#include "pop3/mailbox_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hikyaku::pop3 {

LockTable::Lock::~Lock() {
  // Close first (drops the flock), then let other sessions of this process in.
  if (fd_ >= 0) ::close(fd_);
  std::lock_guard guard(shared_->mutex);
  shared_->held.erase(name_);
}

base::Result<std::unique_ptr<LockTable::Lock>> LockTable::try_lock(
    const std::string& name, const std::filesystem::path& lock_file) {
  {
    std::lock_guard guard(shared_->mutex);
    if (!shared_->held.insert(name).second) return std::unique_ptr<Lock>();
  }
  // From here on the table entry is ours; every failure path must erase it.
  auto release = [&] {
    std::lock_guard guard(shared_->mutex);
    shared_->held.erase(name);
  };
  int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    int saved = errno;
    release();
    return base::make_error("open " + lock_file.string() + ": " + std::strerror(saved));
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int saved = errno;
    ::close(fd);
    release();
    if (saved == EWOULDBLOCK) return std::unique_ptr<Lock>();  // another process
    return base::make_error("flock " + lock_file.string() + ": " + std::strerror(saved));
  }
  return std::make_unique<Lock>(shared_, name, fd);
}

}  // namespace hikyaku::pop3
