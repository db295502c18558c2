// Purpose:   The tag=value lists of DKIM-Signature, DKIM key records and the
//            ARC header fields, parsed strictly into ordered (name, value) pairs.
// Standards: RFC 6376 §3.2 (tag-list grammar: tag names, value characters,
//            FWS around '=' and ';', duplicate tags are an error),
//            RFC 8617 §4.1 (ARC reuses the same syntax).
// Trust:     parses untrusted header and DNS text; linear, no recursion.
// Errors:    base::Result: a malformed list is an error value with a reason.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::auth::common {

struct Tag {
  std::string name;
  std::string value;  // surrounding whitespace removed; inner FWS kept
};

class TagList {
 public:
  std::vector<Tag> tags;  // in the order written

  // The value of `name` (case-sensitive, RFC 6376 §3.2), or nullopt.
  std::optional<std::string_view> find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name).has_value(); }
};

base::Result<TagList> parse_tag_list(std::string_view text);

// `value` with all whitespace (FWS) removed: for b=, bh=, p= (RFC 6376 §3.5).
std::string strip_whitespace(std::string_view value);

}  // namespace hikyaku::auth::common
