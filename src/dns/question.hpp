// Purpose:   The vocabulary of the asynchronous DNS layer: a Question (record
//            type + normalised name) and its Answer (status, TTL and the
//            records of that type), with converters to and from the
//            LookupResult<T> of the synchronous Resolver interface, so one
//            answer can feed a sans-I/O verifier written against Resolver.
// Standards: RFC 1035 §2.3.3 (names compare case-insensitively), §3.2.1
//            (TTL); RFC 2308 (NXDOMAIN vs NODATA); RFC 7208 §3.3 (a TXT
//            record's strings joined); RFC 1035 §3.5 and RFC 3596 §2.5
//            (PTR questions name the reverse zone).
// Trust:     plain values; names come from untrusted input and are only
//            normalised here (never validated: the resolver answers a name
//            it cannot ask with perm_error).
// Concurrency: values; no shared state.
// Errors:    none; an Answer carries its outcome as a Status.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.hpp"

namespace hikyaku::dns {

enum class Type : uint8_t { a, aaaa, mx, txt, ptr };

std::string_view to_string(Type type);

// The name as a cache key: lowercase ASCII (RFC 1035 §2.3.3), no trailing dot.
std::string normalize_name(std::string_view name);

// One question: a record type and a normalised name. For ptr, the name is
// the reverse name (IpAddress::reverse_name()). Ordered, so it keys a map.
struct Question {
  Type type = Type::a;
  std::string name;

  // The question for `name`, normalised.
  static Question of(Type type, std::string_view name);
  // The PTR question for `address` (its in-addr.arpa / ip6.arpa name).
  static Question reverse(const IpAddress& address);

  auto operator<=>(const Question&) const = default;
  bool operator==(const Question&) const = default;
};

// The answer to one Question. Only the field of the question's type is
// filled; with status ok and no records the name exists without records of
// that type (NODATA, RFC 2308 §2.2).
struct Answer {
  Status status = Status::temp_error;
  uint32_t ttl = 0;     // seconds the answer may be kept; 0: only for the asker
  bool secure = false;  // DNSSEC-validated
  std::vector<std::string> texts;  // txt (strings joined per record, RFC 7208 §3.3) and ptr names
  std::vector<MxRecord> mx;
  std::vector<IpAddress> addresses;  // a and aaaa
  // A negative answer (NXDOMAIN, NODATA) whose ttl came from its SOA (RFC
  // 2308 §5): a ttl of 0 then means "do not cache", not "no SOA".
  bool ttl_from_soa = false;

  bool operator==(const Answer&) const = default;
};

// Answer → the synchronous interface's result (the field of that type).
LookupResult<std::string> texts_of(const Answer& answer);
LookupResult<MxRecord> mx_of(const Answer& answer);
LookupResult<IpAddress> addresses_of(const Answer& answer);

// The synchronous interface's result → Answer (texts for txt and ptr).
Answer to_answer(LookupResult<std::string> result);
Answer to_answer(LookupResult<MxRecord> result);
Answer to_answer(LookupResult<IpAddress> result);

}  // namespace hikyaku::dns
