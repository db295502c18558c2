#include "login/failure_tracker.hpp"

#include <algorithm>

#include "base/access_list.hpp"

namespace hikyaku::login {

std::string FailureTracker::source_of(std::string_view ip) {
  // The access lists' reading of a peer address: IPv4-mapped as IPv4, a
  // zone dropped.
  auto source = base::parse_client_address(ip);
  if (!source) return std::string(ip);  // not an address: counted as itself
  if (!source->v6) {
    const std::string text = source->str();
    return text.substr(0, text.rfind('/'));  // a host: without its "/32"
  }
  std::fill(source->network.begin() + 8, source->network.end(), 0);  // RFC 4291: the /64 is the subnet
  source->prefix = 64;
  return source->str();
}

std::optional<FailureTracker::Clock::time_point> FailureTracker::locked_until(std::string_view ip,
                                                                              Clock::time_point now) {
  if (settings_.limit == 0) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = by_source_.find(source_of(ip));
  if (it == by_source_.end() || it->second.locked_until <= now) return std::nullopt;
  return it->second.locked_until;
}

bool FailureTracker::failed(std::string_view ip, Clock::time_point now) {
  if (settings_.limit == 0) return false;
  std::lock_guard lock(mu_);
  const std::string source = source_of(ip);
  auto it = by_source_.find(source);
  if (it == by_source_.end()) {
    make_room(now);
    it = by_source_.emplace(source, Entry{}).first;
  }
  Entry& e = it->second;
  e.last_seen = now;
  if (e.locked_until > now) return false;  // already locked: the lockout runs from when it began
  const auto since = now - settings_.window;
  std::erase_if(e.failures, [&](Clock::time_point t) { return t <= since; });
  e.failures.push_back(now);
  if (e.failures.size() < settings_.limit) return false;
  e.failures.clear();
  e.locked_until = now + settings_.lockout;
  return true;
}

size_t FailureTracker::sources() const {
  std::lock_guard lock(mu_);
  return by_source_.size();
}

void FailureTracker::make_room(Clock::time_point now) {
  if (by_source_.size() < settings_.max_sources) return;
  const auto since = now - settings_.window;
  std::erase_if(by_source_, [&](const auto& kv) {
    const Entry& e = kv.second;
    return e.locked_until <= now && (e.failures.empty() || e.failures.back() <= since);
  });
  if (by_source_.size() < settings_.max_sources) return;
  // The least recently seen source goes, a locked one last (a lockout is
  // what the table is for).
  auto rank = [&](const auto& kv) { return std::pair(kv.second.locked_until > now, kv.second.last_seen); };
  auto oldest = std::min_element(by_source_.begin(), by_source_.end(),
                                 [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  by_source_.erase(oldest);
}

}  // namespace hikyaku::login
