// Purpose:   The author of a message (RFC 5322.From) as DMARC and the
//            forwarder's From rewriting need it: the single mailbox's
//            address, its domain and display name.
// Standards: RFC 5322 §3.4 (mailbox, name-addr, addr-spec, group),
//            §3.6.2 (From), §2.2.3 (unfolding, before any lexing), RFC 7489
//            §6.6.1 (messages without exactly one author domain cannot be
//            evaluated).
// Trust:     parses untrusted header text; never throws; bounded by the
//            field's length. Nothing returned holds CR or LF (the display
//            name goes into a new From field). Fuzzed: fuzz/author_fuzz.cpp.
// Concurrency: pure functions.
// Errors:    nullopt when there is not exactly one usable From mailbox.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/common/message.hpp"

namespace hikyaku::auth::common {

struct Author {
  std::string display_name;  // unquoted, unfolded; may be empty
  std::string address;       // "local@domain" as written
  std::string domain;        // lowercased, without trailing dots
};

// Parse one From field value ("Name <a@b>", "a@b (c)", "\"N\" <a@b>").
// nullopt for a group, an empty value, or more than one mailbox.
std::optional<Author> parse_author(std::string_view from_value);

// The message's author: exactly one From field with exactly one mailbox
// (RFC 7489 §6.6.1), else nullopt.
std::optional<Author> find_author(const ParsedMessage& message);

}  // namespace hikyaku::auth::common
