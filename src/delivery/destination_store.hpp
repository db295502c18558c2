// Purpose:   The forward agent's rate-limit state on disk
//            (DATA_DIR/state/destinations, format in state/destination_state.hpp):
//            read once when the SmtpAgent is created, rewritten whole after
//            every change, so a destination that asked us to slow down is
//            still slowed down after a restart.
// Standards: none (our file). Durability: base/file.hpp (tmp, fsync, rename,
//            fsync the directory): after a crash the file is the old or the
//            new state, never a mix.
// Trust:     the path comes from the configuration; the contents are ours but
//            validated line by line (a damaged line is logged and ignored).
// Concurrency: load() blocks: call it at start-up, not on the io_context
//            thread. save() may be called from any thread; the writes run on
//            the worker pool one at a time, and the newest state is the one
//            left on disk.
// Errors:    none returned: the state is advisory, so an unreadable or
//            damaged file and a failed write are logged (warning, with file
//            and line) and delivery goes on without it.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

#include "delivery/state/destination_state.hpp"

namespace boost::asio {
class thread_pool;
}

namespace hikyaku::delivery {

class DestinationStore {
 public:
  // `pool` runs the writes and must outlive every save() (thread_pool::join
  // runs the ones still queued at shutdown).
  DestinationStore(std::filesystem::path file, boost::asio::thread_pool& pool);

  // The entries of the file that are still valid at `now` (until > now).
  // A missing file is no state, silently; anything else wrong is logged.
  std::vector<state::DestinationState> load(std::chrono::system_clock::time_point now) const;

  // Replace the file's contents with `entries` (asynchronously, on the pool).
  void save(const std::vector<state::DestinationState>& entries);

  const std::filesystem::path& file() const { return file_; }

 private:
  struct Writer;
  std::filesystem::path file_;
  boost::asio::thread_pool& pool_;
  std::shared_ptr<Writer> writer_;
};

}  // namespace hikyaku::delivery
