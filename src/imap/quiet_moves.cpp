#include "imap/quiet_moves.hpp"

#include <algorithm>

namespace hikyaku::imap {

void QuietMoves::watching(const std::string& dir, bool watched) {
  std::lock_guard lock(mu_);
  if (watched) {
    ++watched_[dir];
  } else if (auto it = watched_.find(dir); it != watched_.end() && --it->second == 0) {
    watched_.erase(it);
  }
}

void QuietMoves::note(const std::filesystem::path& from, const std::filesystem::path& to) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  if (paths_.size() >= kPruneAt) std::erase_if(paths_, [&](const auto& e) { return now - e.second > kTtl; });
  for (const auto* p : {&from, &to}) {
    if (paths_.size() >= kMaxNoted || !watched_.contains(p->parent_path().string())) continue;
    paths_.emplace(p->string(), now);
  }
}

void QuietMoves::cancel(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::lock_guard lock(mu_);
  for (const auto& p : {from.string(), to.string()}) {
    if (auto it = paths_.find(p); it != paths_.end()) paths_.erase(it);
  }
}

bool QuietMoves::consume(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = paths_.find(path);
  if (it == paths_.end()) return false;
  paths_.erase(it);
  return true;
}

size_t QuietMoves::noted() const {
  std::lock_guard lock(mu_);
  return paths_.size();
}

}  // namespace hikyaku::imap
