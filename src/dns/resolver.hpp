// Purpose:   The DNS interface every mail-authentication check and the SMTP
//            client use (STYLE R10). Lookups are synchronous: the sans-I/O
//            verifiers are written against it. On the event loop they run
//            through resolve_then() (dns/resolution.hpp) against an AnswerSet
//            filled by an AsyncResolver; the blocking implementations below
//            (worker threads, CachingResolver, CacheOnlyResolver) are being
//            replaced by that path (docs/dns.md). Implementations:
//            UnboundResolver (libunbound, caching; `[dns] servers` forwards to
//            a chosen server), CachingResolver (the answer cache in front of
//            it), FakeResolver (in memory, for tests and the public test
//            suites' zone data) and CacheOnlyResolver: a view for a caller
//            that must not block (the event loop), answering only what its
//            source has at hand (*_at_hand()).
// Standards: RFC 1035 (record types), RFC 2308 (NXDOMAIN vs NODATA), RFC 7208
//            §2.6.7 and §4.4 (temporary vs permanent DNS errors for SPF).
// Trust:     answers are untrusted network data; names are bounded by callers.
// Errors:    a LookupResult carries the outcome as a value; never throws.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::dns {

// An IPv4 or IPv6 address in network byte order.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses bytes[0..3]

  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  // The reverse-lookup name: "4.3.2.1.in-addr.arpa" / nibbles ".ip6.arpa".
  std::string reverse_name() const;
  bool operator==(const IpAddress&) const = default;
};

enum class Status {
  ok,          // an answer; `records` may still be empty (NODATA)
  nxdomain,    // the name does not exist
  temp_error,  // SERVFAIL, timeout, network failure: try again later
  perm_error,  // malformed answer or query (e.g. name too long)
};

template <class T>
struct LookupResult {
  Status status = Status::ok;
  std::vector<T> records;
  bool secure = false;  // DNSSEC-validated (for DANE later)
  uint32_t ttl = 0;     // seconds the answer may be cached (0: do not cache)
};

struct MxRecord {
  uint16_t preference = 0;
  std::string exchange;  // without trailing dot; "" means the null MX "."
  bool operator==(const MxRecord&) const = default;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // TXT: each record's character-strings concatenated (RFC 7208 §3.3).
  virtual LookupResult<std::string> txt(std::string_view name) = 0;
  virtual LookupResult<MxRecord> mx(std::string_view name) = 0;
  virtual LookupResult<IpAddress> a(std::string_view name) = 0;
  virtual LookupResult<IpAddress> aaaa(std::string_view name) = 0;
  virtual LookupResult<std::string> ptr(const IpAddress& address) = 0;

  // The answer when it is at hand without blocking (in memory), else
  // nullopt: only the lookup above can tell. Default: never at hand.
  virtual std::optional<LookupResult<std::string>> txt_at_hand(std::string_view) { return std::nullopt; }
  virtual std::optional<LookupResult<MxRecord>> mx_at_hand(std::string_view) { return std::nullopt; }
  virtual std::optional<LookupResult<IpAddress>> a_at_hand(std::string_view) { return std::nullopt; }
  virtual std::optional<LookupResult<IpAddress>> aaaa_at_hand(std::string_view) { return std::nullopt; }
  virtual std::optional<LookupResult<std::string>> ptr_at_hand(const IpAddress&) { return std::nullopt; }
};

// A view of `source` that never blocks: each lookup answers what the source
// has at hand; anything else is answered temp_error and marks the view
// missed(). A caller runs its whole decision against the view and keeps the
// result only when nothing was missed; otherwise it asks again, with the
// blocking resolver, on a worker thread. One view per decision, one thread.
class CacheOnlyResolver final : public Resolver {
 public:
  explicit CacheOnlyResolver(Resolver& source) : source_(source) {}

  LookupResult<std::string> txt(std::string_view name) override { return take(source_.txt_at_hand(name)); }
  LookupResult<MxRecord> mx(std::string_view name) override { return take(source_.mx_at_hand(name)); }
  LookupResult<IpAddress> a(std::string_view name) override { return take(source_.a_at_hand(name)); }
  LookupResult<IpAddress> aaaa(std::string_view name) override { return take(source_.aaaa_at_hand(name)); }
  LookupResult<std::string> ptr(const IpAddress& address) override { return take(source_.ptr_at_hand(address)); }

  // Some answer was not at hand: whatever was decided with this view is void.
  bool missed() const { return missed_; }

 private:
  template <class T>
  LookupResult<T> take(std::optional<LookupResult<T>> answer) {
    if (answer) return std::move(*answer);
    missed_ = true;
    LookupResult<T> none;
    none.status = Status::temp_error;
    return none;
  }

  Resolver& source_;
  bool missed_ = false;
};

}  // namespace hikyaku::dns
