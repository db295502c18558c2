// Purpose:   The DNS view every sans-I/O decision is written against
//            (STYLE R10): SPF, DKIM, DMARC, ARC and MX route selection ask
//            it and get an answer at once. In the server they run through
//            resolve_then() (dns/resolution.hpp) against an AnswerSet filled
//            by an AsyncResolver on the event loop: nothing ever waits for
//            DNS there (docs/dns.md). Other implementations: FakeResolver (in
//            memory, for tests and the public suites' zone data) and
//            UnboundResolver's blocking role (command-line tools and the
//            benchmark's comparison only).
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
  bool ttl_from_soa = false;  // a negative answer's ttl came from its SOA (Answer::ttl_from_soa)
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

};

}  // namespace hikyaku::dns
