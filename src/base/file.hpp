// Purpose:   Durable file primitives used by the spool, Maildir delivery and
//            the credential store: write a file under a temporary name, fsync
//            it, rename it into place and fsync the directory, so that after
//            a crash the file is either absent or complete (never partial).
// Standards: POSIX rename(2) atomicity; Maildir's tmp/ → new/ convention.
// Trust:     paths come from the configuration, never from the network.
// Errors:    every function returns Status/Result with errno text; none throws.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace hikyaku::base {

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

// Read a whole file.
Result<std::string> read_file(const std::filesystem::path& path);

// mkdir -p with the given mode for directories that are created.
Status ensure_directory(const std::filesystem::path& dir, unsigned mode = 0700);

}  // namespace hikyaku::base
