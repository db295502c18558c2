#include "admin/reload_command.hpp"

#include <signal.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ostream>
#include <string>
#include <thread>

#include "base/file.hpp"
#include "base/pid_lock.hpp"

namespace hikyaku::admin {

namespace {

std::string read_or_empty(const std::filesystem::path& path) {
  auto text = base::read_file(path);
  return text ? *text : std::string();
}

}  // namespace

base::Result<pid_t> server_pid(const config::Config& config) {
  auto pid = base::pid_lock_holder(config.data_dir / "hikyaku.pid");
  if (!pid) return base::make_error("no running server for " + config.data_dir.string() + " (" + pid.error().message + ")");
  return pid;
}

int reload(const config::Config& config, std::ostream& out, std::ostream& err, std::chrono::milliseconds wait) {
  const auto pid_file = config.data_dir / "hikyaku.pid";
  const auto status_file = config.data_dir / "state" / "reload";
  auto found = server_pid(config);
  if (!found) {
    err << "hikyaku reload: " << found.error().message << "\n";
    return 1;
  }
  const pid_t pid = *found;
  const std::string before = read_or_empty(status_file);
  if (::kill(pid, SIGHUP) != 0) {
    err << "hikyaku reload: cannot signal process " << pid << " (" << pid_file.string()
        << "): " << std::strerror(errno) << "\n";
    return 1;
  }
  // The server answers by rewriting the status file once the reload is
  // done (or refused): wait for the change, not for a fixed time.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string after = read_or_empty(status_file);
    if (!after.empty() && after != before) {
      while (!after.empty() && after.back() == '\n') after.pop_back();
      const bool loaded = after.find(": loaded ") != std::string::npos && after.find(kTlsNotReloaded) == std::string::npos;
      (loaded ? out : err) << "hikyaku: " << after << "\n";
      return loaded ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  err << "hikyaku reload: process " << pid << " did not answer within " << wait.count() / 1000
      << " s (see its log)\n";
  return 1;
}

}  // namespace hikyaku::admin
