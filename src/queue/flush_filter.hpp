// Purpose:   Which waiting deliveries `hikyaku queue flush` makes due: all,
//            one message's, or those for one destination domain (the domain
//            of a remote target's address — forwards and relays; a mailbox
//            has none). The running scheduler (Scheduler::flush) and the
//            command working on the spool while the server is stopped
//            (admin) use the same rule.
// Trust:     values from the operator's command line, checked by the
//            control protocol (admin/control.hpp) before they get here.
// Concurrency: a value.
// Errors:    none.
#pragma once

#include <string>
#include <string_view>

#include "policy/slot.hpp"

namespace hikyaku::queue {

struct FlushFilter {
  std::string queue_id;  // empty: any message
  std::string domain;    // empty: any target (lower case)

  bool matches(std::string_view id, const policy::SlotState& slot) const;
};

}  // namespace hikyaku::queue
