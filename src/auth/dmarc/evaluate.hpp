// Purpose:   DMARC evaluation: discover the author domain's policy record,
//            determine organizational domains, check relaxed/strict
//            alignment of the SPF (MAIL FROM) and DKIM (d=) identifiers with
//            the RFC 5322.From domain, and report the result and the policy to
//            apply. Also the forwarder's question: did this message pass only
//            through SPF under an enforcing policy (so a forward breaks it)?
// Standards: RFC 7489 §3.1 (alignment), §3.2 (Organizational Domain via the
//            Public Suffix List), §4.2 (pass rule), §6.6.2-6.6.4 (discovery,
//            sp, pct); draft-ietf-dmarc-dmarcbis §4.10 (DNS Tree Walk, at
//            most 8 queries), §4.10.2 (psd= and the Organizational Domain),
//            np= for non-existent subdomains.
// Trust:     DNS answers and identifiers are untrusted; at most 8 TXT
//            queries per distinct domain walked, memoized per evaluation.
// Concurrency: synchronous; blocks on the Resolver; no shared state.
// Errors:    never throws; DNS failures give Result::temperror and a broken
//            record gives Result::permerror, with a log-only detail.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "auth/dmarc/public_suffix.hpp"
#include "auth/dmarc/record.hpp"
#include "auth/spf/check.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::auth::dmarc {

enum class Result { none, pass, fail, temperror, permerror };
std::string_view to_string(Result r);

enum class Discovery {
  tree_walk,           // DMARCbis DNS tree walk (default)
  public_suffix_list,  // RFC 7489 §3.2 with a PublicSuffixList
};

struct Options {
  Discovery discovery = Discovery::tree_walk;
  const PublicSuffixList* psl = nullptr;  // required for public_suffix_list
  // RFC 7489 §6.6.4 sampling: the policy applies when sample < pct. The
  // caller draws it uniformly from 0..99 (default 0: apply unless pct=0).
  int pct_sample = 0;
};

struct DkimIdentifier {
  bool pass = false;   // the signature verified (dkim=pass)
  std::string domain;  // d= (SDID)
};

struct Input {
  std::string from_domain;  // RFC 5322.From domain (author domain)
  spf::Result spf = spf::Result::none;
  std::string spf_domain;   // MAIL FROM domain (HELO domain for a null path)
  std::vector<DkimIdentifier> dkim;
};

struct Evaluation {
  Result result = Result::none;
  Policy requested = Policy::none;  // p, sp or np as it applies to the author domain
  Policy applied = Policy::none;    // after pct sampling / t=y (what to do on fail)
  bool spf_aligned = false;         // SPF passed and aligned
  bool dkim_aligned = false;        // some passing DKIM signature aligned
  std::string aligned_dkim_domain;  // the first aligned d=
  std::string policy_domain;        // where the record was found
  std::string organizational_domain;  // of the author domain
  std::optional<Record> record;
  std::string detail;  // for the log
};

Evaluation evaluate(dns::Resolver& resolver, const Input& input, const Options& options = {});

// DMARCbis §4.10: the names a DNS tree walk from `domain` queries (at most 8).
std::vector<std::string> tree_walk_targets(std::string_view domain);

// True when DMARC passed through aligned SPF alone (no aligned DKIM) and the
// author domain asks for quarantine or reject: forwarding breaks SPF, so
// the forwarder must rewrite From (or expect the message to fail).
bool passed_only_via_spf_under_enforcement(const Evaluation& e);

}  // namespace hikyaku::auth::dmarc
