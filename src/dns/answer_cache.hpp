// Purpose:   The answer cache of the asynchronous path, in front of another
//            AsyncResolver (UnboundResolver): answers are kept for their TTL,
//            negative ones too, server failures for a few seconds, and
//            concurrent questions for the same name and type share one
//            upstream query (coalescing). Bounded in size.
// Standards: RFC 1035 §3.2.1 (TTL); RFC 2308 §5 (NXDOMAIN cached per
//            <name, class>, NODATA per <name, type, class>, for the TTL the
//            negative answer carries: UnboundResolver reads min(SOA TTL, SOA
//            MINIMUM) from the authority section), §7.1 (a server failure MAY be cached,
//            never more than five minutes; the tuple includes the server,
//            and ours are always the same configured servers).
// Rules:     ok with records: min(TTL, max_ttl); a TTL of 0 is not kept.
//            NXDOMAIN and NODATA (ok, no records): min(TTL, max_ttl); an SOA
//            that says 0 is not kept; with no SOA (a dnsmasq --local zone
//            answers so: Answer::ttl_from_soa false), negative_ttl_without_soa
//            (default 30 s). RFC 2308 §5 says such answers SHOULD NOT be
//            cached because they could loop between servers that forward to
//            each other; this cache answers only this process, so no loop
//            can pass through it. 30 s bounds how stale it can be (a zone's
//            own SOA-derived negative TTLs are typically 300-3600 s) while
//            the burst of questions one sender domain brings (DMARC, DKIM
//            and SPF names that do not exist) is asked once. Set it to 0 to
//            follow §5 to the letter.
//            temp_error (SERVFAIL, timeout, REFUSED): temp_error_ttl, default
//            5 s, at most 300 s (§7.1). 5 s because a failure is often one
//            lost packet or a restarting server: a message arriving seconds
//            later deserves a fresh try (its sender would otherwise retry
//            in minutes), while the burst of identical questions from one
//            decision re-run, or many messages of one sender domain during
//            an outage, is still answered from memory.
//            perm_error: never kept (a malformed answer or name).
//            A hit returns the stored answer with its TTL lowered to the
//            seconds left.
//            Full (max_entries): expired entries go first, then those that
//            would expire soonest.
// Trust:     keeps untrusted answers no longer than their TTL allows.
// Concurrency: single-threaded (AsyncResolver's contract): resolve() and the
//            upstream's callbacks on the event loop. Callbacks may run
//            before resolve() returns (a hit). Upstream answers arriving
//            after the cache is destroyed are dropped.
// Errors:    whatever the upstream answers; never throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "dns/async_resolver.hpp"

namespace hikyaku::dns {

struct AnswerCacheLimits {
  uint32_t max_ttl = 3600;                // seconds; no answer is kept longer
  uint32_t negative_ttl_without_soa = 30;  // seconds; NXDOMAIN/NODATA with TTL 0 (no SOA)
  uint32_t temp_error_ttl = 5;            // seconds; capped at 300 (RFC 2308 §7.1)
  size_t max_entries = 20000;
};

class AnswerCache final : public AsyncResolver {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  using Limits = AnswerCacheLimits;

  explicit AnswerCache(AsyncResolver& upstream, Limits limits = {}, Now now = Clock::now);
  ~AnswerCache() override = default;
  AnswerCache(const AnswerCache&) = delete;
  AnswerCache& operator=(const AnswerCache&) = delete;

  void resolve(const Question& q, Callback done) override;

  size_t size() const { return entries_.size(); }          // answers held (some may have expired)
  size_t in_flight() const { return in_flight_.size(); }   // upstream questions not yet answered
  uint64_t hits() const { return hits_; }
  uint64_t upstream_queries() const { return upstream_queries_; }
  uint64_t coalesced() const { return coalesced_; }        // questions that joined one in flight

 private:
  struct Entry {
    Answer answer;
    Clock::time_point expires;
    std::multimap<Clock::time_point, Question>::iterator by_expiry;
  };

  void on_answer(const Question& q, const Answer& answer);
  void store(const Question& q, const Answer& answer, Clock::time_point now);
  // Seconds `answer` may be kept; 0: not at all.
  uint32_t keep_for(const Answer& answer) const;
  void erase(std::map<Question, Entry>::iterator it);

  AsyncResolver& upstream_;
  Limits limits_;
  Now now_;
  std::map<Question, Entry> entries_;
  std::multimap<Clock::time_point, Question> by_expiry_;  // eviction order
  std::map<Question, std::vector<Callback>> in_flight_;   // waiters per upstream question
  // Upstream callbacks hold a weak reference: after destruction they do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  uint64_t hits_ = 0;
  uint64_t upstream_queries_ = 0;
  uint64_t coalesced_ = 0;
};

}  // namespace hikyaku::dns
