#include "dns/answer_cache.hpp"

#include <algorithm>
#include <utility>

namespace hikyaku::dns {
namespace {

// RFC 2308 §7.1: a server failure MUST NOT be cached longer than 5 minutes.
constexpr uint32_t kMaxTempErrorTtl = 300;

bool negative(const Answer& answer) {
  if (answer.status == Status::nxdomain) return true;
  return answer.status == Status::ok && answer.texts.empty() && answer.mx.empty() && answer.addresses.empty();
}

}  // namespace

AnswerCache::AnswerCache(AsyncResolver& upstream, Limits limits, Now now)
    : upstream_(upstream), limits_(limits), now_(std::move(now)) {
  limits_.temp_error_ttl = std::min(limits_.temp_error_ttl, kMaxTempErrorTtl);
}

uint32_t AnswerCache::keep_for(const Answer& answer) const {
  switch (answer.status) {
    case Status::perm_error: return 0;
    case Status::temp_error: return limits_.temp_error_ttl;  // RFC 2308 §7.1
    case Status::ok:
    case Status::nxdomain:
      if (answer.ttl > 0) return std::min(answer.ttl, limits_.max_ttl);
      // TTL 0: a positive answer is not kept (RFC 1035 §3.2.1), nor a
      // negative one whose SOA says 0; a negative one without an SOA gets
      // negative_ttl_without_soa (RFC 2308 §5, see the header).
      return negative(answer) && !answer.ttl_from_soa ? std::min(limits_.negative_ttl_without_soa, limits_.max_ttl)
                                                      : 0;
  }
  return 0;
}

void AnswerCache::resolve(const Question& q, Callback done) {
  auto now = now_();
  if (auto it = entries_.find(q); it != entries_.end()) {
    if (it->second.expires > now) {
      ++hits_;
      Answer answer = it->second.answer;
      auto left = std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now).count();
      answer.ttl = std::min<uint32_t>(answer.ttl, static_cast<uint32_t>(left));
      done(answer);
      return;
    }
    erase(it);
  }
  // Coalescing: a question already asked upstream waits for that answer.
  if (auto it = in_flight_.find(q); it != in_flight_.end()) {
    ++coalesced_;
    it->second.push_back(std::move(done));
    return;
  }
  // Registered before asking: the upstream may answer before resolve() returns.
  in_flight_[q].push_back(std::move(done));
  ++upstream_queries_;
  upstream_.resolve(q, [this, alive = std::weak_ptr<int>(alive_), q](const Answer& answer) {
    if (alive.expired()) return;
    on_answer(q, answer);
  });
}

void AnswerCache::on_answer(const Question& q, const Answer& answer) {
  auto it = in_flight_.find(q);
  if (it == in_flight_.end()) return;  // cannot happen: one upstream question per entry
  // Take the waiters out first: a callback may ask the same question again.
  std::vector<Callback> waiters = std::move(it->second);
  in_flight_.erase(it);
  store(q, answer, now_());
  for (auto& done : waiters) done(answer);
}

void AnswerCache::store(const Question& q, const Answer& answer, Clock::time_point now) {
  uint32_t seconds = keep_for(answer);
  if (seconds == 0 || limits_.max_entries == 0) return;
  if (auto it = entries_.find(q); it != entries_.end()) erase(it);
  // Bounded: drop expired entries, then those expiring soonest.
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) erase(entries_.find(by_expiry_.begin()->second));
  while (entries_.size() >= limits_.max_entries) erase(entries_.find(by_expiry_.begin()->second));
  auto expires = now + std::chrono::seconds(seconds);
  auto order = by_expiry_.emplace(expires, q);
  entries_.emplace(q, Entry{answer, expires, order});
}

void AnswerCache::erase(std::map<Question, Entry>::iterator it) {
  by_expiry_.erase(it->second.by_expiry);
  entries_.erase(it);
}

}  // namespace hikyaku::dns
