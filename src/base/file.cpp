#include "base/file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace hikyaku::base {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<UniqueFd> open_temporary(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return UniqueFd(fd);
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return errno_error("create a file in", dir, errno);
  std::string name = (dir / "spill.XXXXXX").string();
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return errno_error("create a file in", dir, errno);
  ::unlink(name.c_str());
  return UniqueFd(fd);
}

Status read_exactly(int fd, uint64_t offset, std::span<char> out, const std::filesystem::path& path) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read", path, errno);
    }
    if (n == 0) return make_error("read " + path.string() + ": short file");
    done += static_cast<size_t>(n);
  }
  return {};
}

Status copy_range(int from, uint64_t offset, uint64_t size, int to, const std::filesystem::path& to_path) {
  auto in = static_cast<loff_t>(offset);
  uint64_t left = size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(from, &in, to, nullptr, left, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) break;
    if (n < 0) return errno_error("write", to_path, errno);
    if (n == 0) return make_error("write " + to_path.string() + ": short source file");
    left -= static_cast<uint64_t>(n);
  }
  // The kernel cannot copy between these files: through a buffer.
  std::string buf(std::min<uint64_t>(left, 256 * 1024), '\0');
  while (left > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    if (auto st = read_exactly(from, static_cast<uint64_t>(in), std::span(buf.data(), n), to_path); !st) return st;
    if (auto st = write_all(to, std::string_view(buf.data(), n), to_path); !st) return st;
    in += static_cast<loff_t>(n);
    left -= n;
  }
  return {};
}

Error errno_error(std::string_view what, const std::filesystem::path& path, int err) {
  return Error{std::string(what) + " " + path.string() + ": " + std::strerror(err), err};
}

Status write_all(int fd, std::string_view data, const std::filesystem::path& path) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("write", path, errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return {};
}

Status fsync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("open directory", dir, errno);
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    return errno_error("fsync directory", dir, errno);
  }
  return {};
}

Status write_file_durable(const std::filesystem::path& tmp_path,
                          const std::filesystem::path& final_path, std::string_view data,
                          bool sync) {
  int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("create", tmp_path, errno);
  if (auto st = write_all(fd, data, tmp_path); !st) {
    ::close(fd);
    ::unlink(tmp_path.c_str());
    return st;
  }
  if (sync && ::fdatasync(fd) != 0) {
    auto err = errno_error("fsync", tmp_path, errno);
    ::close(fd);
    ::unlink(tmp_path.c_str());
    return err;
  }
  if (::close(fd) != 0) {
    auto err = errno_error("close", tmp_path, errno);
    ::unlink(tmp_path.c_str());
    return err;
  }
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    auto err = errno_error("rename", tmp_path, errno);
    ::unlink(tmp_path.c_str());
    return err;
  }
  if (sync) return fsync_directory(final_path.parent_path());
  return {};
}

Status replace_file_durable(const std::filesystem::path& path, std::string_view data, bool sync) {
  auto tmp = path;
  tmp += ".tmp";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  return write_file_durable(tmp, path, data, sync);
}

Result<std::string> read_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("open", path, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto err = errno_error("read", path, errno);
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<std::string> read_private_line(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return make_error(path.string() + ": " + std::strerror(errno));
  if ((st.st_mode & S_IROTH) != 0)
    return make_error(path.string() + " is readable by every user: chmod o-r (it holds a secret)");
  auto text = read_file(path);
  if (!text.ok()) return text.error();
  std::string line = text->substr(0, text->find_first_of("\r\n"));
  if (line.empty()) return make_error(path.string() + ": the first line is empty");
  return line;
}

Status ensure_directory(const std::filesystem::path& dir, unsigned mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return {};
  std::filesystem::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (partial.empty() || std::filesystem::is_directory(partial, ec)) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) return errno_error("mkdir", partial, errno);
  }
  return {};
}

}  // namespace hikyaku::base
