// Purpose:   A small answer cache in front of any Resolver. libunbound caches
//            too, but every synchronous ub_resolve() builds and tears down a
//            worker (≈0.6 ms of CPU here, measured by bench/forward.sh), and a
//            forwarded message needs six lookups (SPF, DMARC, MX, A, AAAA).
//            Answers are kept for their TTL (capped), NXDOMAIN/NODATA too
//            (RFC 2308), for 30 s when they came without an SOA (TTL 0: see
//            answer_cache.hpp); temporary and permanent errors are never
//            cached. Being replaced by AnswerCache (docs/dns.md).
// Standards: RFC 1035 §3.2.1 (TTL), RFC 2308 (negative caching).
// Trust:     caches untrusted answers only as long as their TTL allows.
// Concurrency: thread-safe (one mutex; lookups of a missing entry run
//            outside it, so two threads may both ask — harmless). The
//            *_at_hand() lookups only take the mutex: the event loop may
//            call them (through a CacheOnlyResolver).
// Errors:    whatever the inner resolver returns.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

#include "dns/resolver.hpp"

namespace hikyaku::dns {

class CachingResolver final : public Resolver {
 public:
  using Clock = std::chrono::steady_clock;
  explicit CachingResolver(Resolver& inner, uint32_t max_ttl = 3600, size_t max_entries = 20000)
      : inner_(inner), max_ttl_(max_ttl), max_entries_(max_entries) {}

  LookupResult<std::string> txt(std::string_view name) override;
  LookupResult<MxRecord> mx(std::string_view name) override;
  LookupResult<IpAddress> a(std::string_view name) override;
  LookupResult<IpAddress> aaaa(std::string_view name) override;
  LookupResult<std::string> ptr(const IpAddress& address) override;

  // What the cache holds and has not expired (never blocks).
  std::optional<LookupResult<std::string>> txt_at_hand(std::string_view name) override;
  std::optional<LookupResult<MxRecord>> mx_at_hand(std::string_view name) override;
  std::optional<LookupResult<IpAddress>> a_at_hand(std::string_view name) override;
  std::optional<LookupResult<IpAddress>> aaaa_at_hand(std::string_view name) override;
  std::optional<LookupResult<std::string>> ptr_at_hand(const IpAddress& address) override;

  size_t size() const;

 private:
  template <class T>
  struct Entry {
    LookupResult<T> answer;
    Clock::time_point expires;
  };
  template <class T>
  using Table = std::map<std::string, Entry<T>>;

  template <class T, class Lookup>
  LookupResult<T> cached(Table<T>& table, std::string key, Lookup lookup);
  template <class T>
  std::optional<LookupResult<T>> at_hand(const Table<T>& table, const std::string& key) const;

  Resolver& inner_;
  uint32_t max_ttl_;
  size_t max_entries_;
  mutable std::mutex mu_;
  Table<std::string> txt_;
  Table<MxRecord> mx_;
  Table<IpAddress> a_;
  Table<IpAddress> aaaa_;
  Table<std::string> ptr_;
};

}  // namespace hikyaku::dns
