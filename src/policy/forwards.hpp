// Purpose:   What the configuration says about forward targets: their
//            [[forward]] options, whether they are hidden, and their
//            fallback chains. A forward's chain is its `fallback` list with
//            every forward link expanded in place by that forward's own
//            chain (depth first): A = [forward:B, mailbox:x],
//            B = [mailbox:y] gives B, y, x. config forbids cycles, so the
//            expansion is finite. Link n of a slot is chain[n - 1] of the
//            slot's planned target.
// Standards: DESIGN.md "Delivery semantics".
// Trust:     the configuration is trusted.
// Concurrency: pure functions over a const Config.
// Errors:    none.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "mail/target.hpp"
#include "policy/slot.hpp"

namespace hikyaku::policy {

// The [[forward]] options that govern a forward target (nullptr: a plain
// forward without a table — not hidden, no fallback).
const config::Forward* forward_options(const config::Config& config, const mail::Target& target);
bool is_hidden(const config::Config& config, const mail::Target& target);

// The expanded chain of `planned` (empty for mailboxes and plain forwards).
std::vector<mail::Target> fallback_chain(const config::Config& config, const mail::Target& planned);

// Every hidden forward address of the configuration (lowercase).
std::vector<std::string> hidden_addresses(const config::Config& config);

// The reply as it is stated in headers and reports: the remote reply when
// the detail is one ("550 5.7.1 ..."), else "<status> <our description>".
std::string reply_text(const AttemptResult& result);

// The X-Hikyaku-Diverted value: `<RFC 5322 date>; reason="<reply>"`, one
// line, quotes and backslashes escaped, no CR/LF from the remote.
std::string diverted_note(TimePoint when, std::string_view reply);

}  // namespace hikyaku::policy
