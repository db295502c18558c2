// Purpose:   SPF evaluation: check_host() for one client IP and identity,
//            with the DNS-term and void-lookup limits, the per-mechanism
//            MX/PTR name limits and the explanation string for "fail".
// Standards: RFC 7208 §2.3-2.4 (identities, postmaster default), §2.6
//            (results), §4 (check_host: §4.3 initial processing, §4.4-4.5
//            record lookup and selection, §4.6 evaluation, §4.6.4 limits),
//            §5 (mechanisms), §6 (redirect, exp), §7 (macros), §8.
// Trust:     evaluates untrusted records fetched with untrusted names; every
//            DNS-using path is bounded by the §4.6.4 limits.
// Concurrency: synchronous; blocks on the Resolver. One call, no shared state.
// Errors:    never throws; DNS and syntax failures become temperror and
//            permerror in the returned Outcome (RFC 7208 §2.6.6-2.6.7), with
//            a log-only `detail`.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "dns/resolver.hpp"

namespace hikyaku::auth::spf {

// RFC 7208 §2.6.
enum class Result { none, neutral, pass, fail, softfail, temperror, permerror };

std::string_view to_string(Result r);

struct Limits {
  int dns_terms = 10;     // RFC 7208 §4.6.4: include a mx ptr exists redirect
  int void_lookups = 2;   // RFC 7208 §4.6.4: NXDOMAIN or empty answers
  int names_per_term = 10;  // RFC 7208 §4.6.4: MX names / PTR names per term
};

struct Options {
  std::string receiver = "unknown";  // %{r}: our host name (RFC 7208 §7.2)
  std::chrono::system_clock::time_point now{};  // %{t}
  Limits limits;
};

struct Outcome {
  Result result = Result::none;
  // The expanded exp= text for "fail" (RFC 7208 §6.2), empty if there was
  // none. Sender-facing: it is the domain owner's text, not ours.
  std::string explanation;
  // For the log only: which term decided, or what went wrong.
  std::string detail;
};

// RFC 7208 §4: check_host(<ip>, <domain>, <sender>). `helo` feeds %{h}.
Outcome check_host(dns::Resolver& resolver, const dns::IpAddress& ip, std::string_view domain,
                   std::string_view sender, std::string_view helo, const Options& options = {});

// The MAIL FROM check as a receiver runs it (RFC 7208 §2.4): with a null
// reverse-path the identity is "postmaster@<helo>"; an empty local part
// becomes "postmaster" (§4.3).
Outcome check_mail_from(dns::Resolver& resolver, const dns::IpAddress& ip, std::string_view mail_from,
                        std::string_view helo, const Options& options = {});

// The HELO identity check (RFC 7208 §2.3): check_host(ip, helo, postmaster@helo).
Outcome check_helo(dns::Resolver& resolver, const dns::IpAddress& ip, std::string_view helo,
                   const Options& options = {});

}  // namespace hikyaku::auth::spf
