// Purpose:   Durable file primitives used by the spool, Maildir delivery and
//            the credential store: write a file under a temporary name, fsync
//            it, rename it into place and fsync the directory, so that after
//            a crash the file is either absent or complete (never partial).
//            Also the few primitives a message kept in a file needs: an
//            owned descriptor, an unlinked temporary file, exact positional
//            reads and a file-to-file copy.
// Standards: POSIX rename(2) atomicity; Maildir's tmp/ → new/ convention.
// Trust:     paths come from the configuration, never from the network.
// Errors:    every function returns Status/Result with errno text; none throws.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.hpp"

namespace hikyaku::base {

// An owned file descriptor, closed on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// "WHAT PATH: strerror(err)" — the one way errno failures become Errors
// (Error::error_number keeps `err`).
Error errno_error(std::string_view what, const std::filesystem::path& path, int err);

// write(2) all of `data` to `fd`, retrying short writes and EINTR.
Status write_all(int fd, std::string_view data, const std::filesystem::path& path);

// fsync(2) a directory so a rename or create inside it is durable.
Status fsync_directory(const std::filesystem::path& dir);

// Write `data` to `tmp_path` (O_EXCL), fsync, rename to `final_path`, fsync the
// directory of `final_path`. When `sync` is false the fsyncs are skipped
// (only for tests and tools that do not need durability).
Status write_file_durable(const std::filesystem::path& tmp_path,
                          const std::filesystem::path& final_path, std::string_view data,
                          bool sync = true);

// write_file_durable through PATH.tmp, removing first the one a crash
// between create and rename left behind (the create is O_EXCL): the one
// way our state files are replaced whole.
Status replace_file_durable(const std::filesystem::path& path, std::string_view data, bool sync = true);

// A new file in `dir` that has no name (O_TMPFILE; where the file system
// lacks it, a fresh name unlinked at once), open for reading and writing.
// It disappears with its last descriptor, also after a crash.
Result<UniqueFd> open_temporary(const std::filesystem::path& dir);

// pread(2) exactly out.size() bytes at `offset`, retrying short reads and
// EINTR; fewer bytes in the file is an error ("short file"), never a
// truncated result.
Status read_exactly(int fd, uint64_t offset, std::span<char> out, const std::filesystem::path& path);

// Append `size` bytes of `from` starting at `offset` to `to` at its current
// position (copy_file_range(2), which copies inside the kernel; read and
// write where it is not supported). A short source is an error.
Status copy_range(int from, uint64_t offset, uint64_t size, int to, const std::filesystem::path& to_path);

// Read a whole file.
Result<std::string> read_file(const std::filesystem::path& path);

// A secret kept in a file (a relay password): its first line, without CR.
// Refused when the file is readable by every user of the system, or empty;
// the error names the file, never the secret.
Result<std::string> read_private_line(const std::filesystem::path& path);

// mkdir -p with the given mode for directories that are created.
Status ensure_directory(const std::filesystem::path& dir, unsigned mode = 0700);

}  // namespace hikyaku::base
