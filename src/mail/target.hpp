// Purpose:   One target of a delivery plan: a local mailbox ("mailbox:NAME"),
//            a forward address ("forward:ADDR": a copy sent on, with SRS,
//            ARC and the forward's fallback rules) or a gateway recipient
//            ("relay:ADDR": the message relayed unchanged to the next hop
//            of its [[route]], issue 14). The vocabulary shared by
//            the configuration, the delivery policy, the spool and the
//            delivery agents, so that none of them needs another's types.
// Trust:     values come from the trusted configuration; a forward address
//            may be hidden (policy decides how it is shown).
// Errors:    Target::parse() returns why a text is not a target.
#pragma once

#include <string>
#include <string_view>

#include "base/result.hpp"

namespace hikyaku::mail {

struct Target {
  enum class Kind { mailbox, forward, relay };
  Kind kind = Kind::mailbox;
  std::string value;  // mailbox name, forward address or relayed recipient

  static std::string_view kind_name(Kind kind) {
    return kind == Kind::mailbox ? "mailbox" : kind == Kind::forward ? "forward" : "relay";
  }
  std::string str() const { return std::string(kind_name(kind)) + ":" + value; }
  // Delivered by SMTP to another host (forward or relay), not into a mailbox.
  bool remote() const { return kind != Kind::mailbox; }
  bool operator==(const Target&) const = default;

  // What the configuration and the state files write: "mailbox:NAME" (a
  // valid_mailbox_name) or "forward:ADDRESS" (an address, lower-cased),
  // the prefix in any case. A relay target is never written by hand. The
  // error says what is wrong with the text (not quoting a whole line).
  static base::Result<Target> parse(std::string_view text);
};

// A [[mailbox]] name: letters, digits, '.', '_', '-'; 1..64; no leading '.'
// (so that it is one directory under DATA_DIR/mailboxes, never a path).
bool valid_mailbox_name(std::string_view name);

}  // namespace hikyaku::mail
