#include "delivery/destination_store.hpp"

#include <cstdint>
#include <mutex>
#include <string>

#include "base/file.hpp"
#include "base/log.hpp"
#include "net/asio.hpp"

namespace hikyaku::delivery {

namespace {
std::shared_ptr<spdlog::logger> log() { return base::logger("smtp-client"); }
}  // namespace

// The newest state not yet written. save() replaces `latest`; a write task
// takes whatever is newest when it runs, so tasks that run late (or out of
// order on the pool) never put an older state on disk after a newer one.
struct DestinationStore::Writer {
  std::mutex mu;  // guards latest, generation
  std::string latest;
  uint64_t generation = 0;
  std::mutex write_mu;  // one write at a time; guards written
  uint64_t written = 0;
};

DestinationStore::DestinationStore(std::filesystem::path file, boost::asio::thread_pool& pool)
    : file_(std::move(file)), pool_(pool), writer_(std::make_shared<Writer>()) {}

std::vector<state::DestinationState> DestinationStore::load(std::chrono::system_clock::time_point now) const {
  std::vector<state::DestinationState> out;
  std::error_code ec;
  if (!std::filesystem::exists(file_, ec)) return out;  // never limited, or a fresh data_dir
  auto text = base::read_file(file_);
  if (!text.ok()) {
    log()->warn("rate-limit state ignored: {}", text.error().message);
    return out;
  }
  auto parsed = state::parse(*text);
  for (const auto& issue : parsed.issues)
    log()->warn("{}:{}: {}; line ignored", file_.string(), issue.line, issue.message);
  for (auto& e : parsed.entries)
    if (e.until > now) out.push_back(std::move(e));
  return out;
}

void DestinationStore::save(const std::vector<state::DestinationState>& entries) {
  {
    std::lock_guard lock(writer_->mu);
    writer_->latest = state::format(entries);
    ++writer_->generation;
  }
  net::asio::post(pool_, [writer = writer_, file = file_] {
    std::lock_guard write_lock(writer->write_mu);
    std::string text;
    uint64_t generation = 0;
    {
      std::lock_guard lock(writer->mu);
      if (writer->generation == writer->written) return;  // an earlier task wrote it
      text = writer->latest;
      generation = writer->generation;
    }
    auto st = base::ensure_directory(file.parent_path());
    if (st.ok()) st = base::replace_file_durable(file, text);
    if (!st.ok()) log()->warn("rate-limit state not saved: {}", st.error().message);
    writer->written = generation;  // a failed write is retried by the next change
  });
}

}  // namespace hikyaku::delivery
