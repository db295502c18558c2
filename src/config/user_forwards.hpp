// Purpose:   Per-user forwarding (a mailbox's `.forward`): the file
//            DATA_DIR/forwards that `hikyaku forward set|clear` writes, and
//            its merge into the configuration. Each entry turns the
//            mailbox's `mailbox:NAME` targets into `forward:ADDR` targets
//            (plus the local copy with keep_copy) and adds a hidden
//            [[forward]] for each address, so that every other component
//            treats it exactly like a configured forward.
//            The file (written only by the tool, one table per mailbox):
//              [[user]]
//              name = "alice"
//              to = ["alice.private@gmail.example"]
//              keep_copy = false
//              fallback = "mailbox:alice"   # optional, the default
// Standards: none (TOML v1.0.0 through toml++).
// Trust:     the file is written by the operator's tool but read back as
//            untrusted text: any content gives entries or positioned errors.
// Errors:    values: FILE:LINE:COL: message, like the configuration file's
//            own errors; never throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace hikyaku::config {

struct UserForward {
  std::string name;             // the [[mailbox]]
  std::vector<std::string> to;  // lower case email addresses, in order
  bool keep_copy = false;       // also deliver into the mailbox
  std::string fallback;         // a [[mailbox]] name; "" = `name` (mailbox:NAME)
  // Where each value is written ("FILE:LINE:COL"; empty for entries that
  // were not parsed from a file).
  std::string where;            // the [[user]] table
  std::string name_where;
  std::vector<std::string> to_where;  // one per `to`
  std::string fallback_where;

  // The mailbox that takes diverted mail: `fallback`, else `name`.
  const std::string& fallback_mailbox() const { return fallback.empty() ? name : fallback; }
};

struct UserForwardsResult {
  std::vector<UserForward> forwards;  // in file order; only when errors is empty
  std::vector<ConfigError> errors;
};

// Parse the text of a forwards file; `name` is used in error positions.
// Syntax only (keys, types, addresses, fallback form, one entry per
// mailbox); whether the mailboxes exist is apply_user_forwards()'s job.
UserForwardsResult parse_user_forwards(std::string_view text, const std::string& name);

// The file's text for `forwards` (parse_user_forwards reads it back equal).
std::string render_user_forwards(const std::vector<UserForward>& forwards);

// Check each entry against the configuration (the mailbox and the fallback
// are [[mailbox]]es; no address is in a local [[domain]], where it would
// loop) and merge the valid ones: [[address]] targets mailbox:NAME become
// forward:TO... (then mailbox:NAME with keep_copy), and each TO without a
// configured [[forward]] gets one: hidden, fallback mailbox:FALLBACK, the
// other options their defaults. A configured [[forward]] for the same
// address wins (its options apply). Returns the errors; warnings (a mailbox
// that no [[address]] delivers to) are appended to `warnings`.
std::vector<ConfigError> apply_user_forwards(Config& config, const std::vector<UserForward>& forwards,
                                             std::vector<ConfigError>& warnings);

// One line for `hikyaku forward show`: "forward for alice: a@x.example
// (hidden; fallback mailbox:alice; no local copy)". `config` is the
// configuration without the forwards file, to tell which addresses have a
// configured [[forward]] of their own.
std::string describe_user_forward(const Config& config, const UserForward& forward);

}  // namespace hikyaku::config
