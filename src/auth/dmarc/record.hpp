// Purpose:   The DMARC policy record: parse "v=DMARC1; p=...; ..." from the
//            _dmarc TXT record into typed fields.
// Standards: RFC 7489 §6.3 (tags: v p sp adkim aspf pct rua ruf fo rf ri),
//            §6.4 (formal definition), §6.6.3 (invalid p/sp with a valid rua
//            means p=none); draft-ietf-dmarc-dmarcbis §4.7 (np, psd, t).
// Trust:     parses untrusted DNS text; bounded by the TXT size; never throws.
// Errors:    a record that is not DMARC ("v=DMARC1" not first) or is
//            malformed is a base::Error; the caller decides none/permerror.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::auth::dmarc {

enum class Policy { none, quarantine, reject };
enum class AlignmentMode { relaxed, strict };
enum class PsdFlag { unset, yes, no, unknown };  // DMARCbis psd=y / n / u

struct Record {
  Policy p = Policy::none;             // requested policy for the domain
  std::optional<Policy> sp;            // subdomains (RFC 7489 §6.3)
  std::optional<Policy> np;            // non-existent subdomains (DMARCbis)
  AlignmentMode adkim = AlignmentMode::relaxed;
  AlignmentMode aspf = AlignmentMode::relaxed;
  int pct = 100;                       // RFC 7489 §6.3, 0-100
  bool testing = false;                // DMARCbis t=y
  PsdFlag psd = PsdFlag::unset;        // DMARCbis psd=
  std::vector<std::string> rua;        // aggregate report URIs (parsed, unused)
  std::vector<std::string> ruf;        // failure report URIs (parsed, unused)
  bool p_was_invalid = false;          // p or sp invalid, treated as p=none (§6.6.3)
};

// Is this TXT string a DMARC record (first tag exactly v=DMARC1)?
bool is_dmarc_record(std::string_view txt);

base::Result<Record> parse_record(std::string_view txt);

std::string_view to_string(Policy p);

}  // namespace hikyaku::auth::dmarc
