#include "base/pid_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

namespace hikyaku::base {
namespace {

struct flock whole_file(short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file; l_pid must be 0 for OFD locks
  return fl;
}

// The pid written in the file (a decimal number and a newline).
Result<pid_t> pid_in(int fd, const std::filesystem::path& path) {
  char buf[32];
  const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n < 0) return errno_error("read", path, errno);
  pid_t pid = 0;
  const char* end = buf + n;
  auto [ptr, ec] = std::from_chars(buf, end, pid);
  if (ec != std::errc() || pid <= 1 || (ptr != end && *ptr != '\n')) return make_error(path.string() + ": not a process id");
  return pid;
}

}  // namespace

Result<PidLock> PidLock::acquire(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return errno_error("open", path, errno);
  struct flock fl = whole_file(F_WRLCK);
  if (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) {
    if (errno != EAGAIN && errno != EACCES) return errno_error("lock", path, errno);
    auto holder = pid_in(fd.get(), path);
    return make_error("another hikyaku" + (holder ? " (pid " + std::to_string(*holder) + ")" : std::string()) +
                      " serves this data directory (" + path.string() + " is locked)");
  }
  const std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0) return errno_error("truncate", path, errno);
  if (::pwrite(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    return errno_error("write", path, errno);
  return PidLock(std::move(fd), path);
}

void PidLock::remove() {
  if (!fd_) return;
  ::unlink(path_.c_str());  // a client that opened it before finds it unlocked once fd_ closes
  fd_ = UniqueFd();
}

Result<pid_t> pid_lock_holder(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open", path, errno);
  struct flock fl = whole_file(F_WRLCK);
  if (::fcntl(fd.get(), F_OFD_GETLK, &fl) != 0) return errno_error("lock", path, errno);
  if (fl.l_type == F_UNLCK) return make_error(path.string() + " is not locked: left by a server that ended");
  return pid_in(fd.get(), path);
}

}  // namespace hikyaku::base
