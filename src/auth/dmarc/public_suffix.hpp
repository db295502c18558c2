// Purpose:   The Public Suffix List and RFC 7489's Organizational Domain
//            (public suffix plus one label), the configurable alternative to
//            the DMARCbis DNS tree walk.
// Standards: RFC 7489 §3.2 (Organizational Domain), publicsuffix.org list
//            format and algorithm (rules, "*." wildcards, "!" exceptions,
//            the implicit "*" rule).
// Trust:     the list file is operator-supplied (Debian's `publicsuffix`
//            package: /usr/share/publicsuffix/public_suffix_list.dat); names
//            looked up are untrusted and only compared.
// Concurrency: immutable after load; safe to share between threads.
// Errors:    load() returns a base::Error if the file cannot be read.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>

#include "base/result.hpp"

namespace hikyaku::auth::dmarc {

class PublicSuffixList {
 public:
  static base::Result<PublicSuffixList> load(const std::string& path);
  // From the list's text (for tests).
  static PublicSuffixList parse(std::string_view text);

  // The public suffix of `domain` (lowercase, no trailing dot).
  std::string public_suffix(std::string_view domain) const;
  // RFC 7489 §3.2: the public suffix plus one label; `domain` itself when it
  // is a public suffix.
  std::string organizational_domain(std::string_view domain) const;
  size_t size() const { return rules_.size() + wildcards_.size() + exceptions_.size(); }

 private:
  std::unordered_set<std::string> rules_;       // "co.uk"
  std::unordered_set<std::string> wildcards_;   // "*.ck" stored as "ck"
  std::unordered_set<std::string> exceptions_;  // "!www.ck" stored as "www.ck"
};

}  // namespace hikyaku::auth::dmarc
