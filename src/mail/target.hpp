// Purpose:   One target of a delivery plan: a local mailbox ("mailbox:NAME")
//            or a forward address ("forward:ADDR"). The vocabulary shared by
//            the configuration, the delivery policy, the spool and the
//            delivery agents, so that none of them needs another's types.
// Trust:     values come from the trusted configuration; a forward address
//            may be hidden (policy decides how it is shown).
// Errors:    none.
#pragma once

#include <string>

namespace hikyaku::mail {

struct Target {
  enum class Kind { mailbox, forward };
  Kind kind = Kind::mailbox;
  std::string value;  // mailbox name or forward address

  std::string str() const { return (kind == Kind::mailbox ? "mailbox:" : "forward:") + value; }
  bool operator==(const Target&) const = default;
};

}  // namespace hikyaku::mail
