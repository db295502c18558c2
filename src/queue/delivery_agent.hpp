// Purpose:   The interface between the queue and the outside world (Postfix:
//            the queue manager "does not talk to the outside world"): the
//            scheduler hands one delivery (one recipient, one target) to an
//            agent and gets a policy::AttemptResult back. Agents: Maildir
//            (local), the SMTP client (forwards). `app` wires them in.
// Concurrency: deliver() is called on a queue thread (which may block) or,
//            for the forwards of a message just received, on the event loop:
//            an agent whose work blocks (Maildir) is never handed a slot
//            there (docs/ARCHITECTURE.md, "threads"). `done` is called
//            exactly once, on any thread, possibly before deliver() returns.
// Errors:    every failure is an AttemptResult, never an exception.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/clock.hpp"
#include "base/result.hpp"
#include "mail/envelope.hpp"
#include "mail/message.hpp"
#include "mail/target.hpp"
#include "policy/slot.hpp"

namespace hikyaku::queue {

struct DeliveryRequest {
  std::string queue_id;
  const mail::Envelope* envelope = nullptr;
  std::filesystem::path message_path;  // the immutable spooled message
  uint64_t message_offset = 0;         // where the message bytes start in that file
  uint64_t message_size = 0;
  std::string recipient;               // the original recipient address
  mail::Target target;                 // mailbox:NAME / forward:ADDR
  // Set on a diverted copy (a fallback link): the value of the
  // X-Hikyaku-Diverted header the agent puts first (DESIGN.md).
  std::string diverted;
  policy::Origin origin = policy::Origin::received;
  // Earlier attempts of this target (0: the first). The SMTP client's TLS
  // policy falls back to plaintext after a failed handshake only on a retry.
  unsigned attempts = 0;
  // When the slot must divert if still undelivered (its defer_limit; epoch:
  // none). An agent that would only be waiting (a slowed-down destination)
  // answers temporary by then, so the diversion happens on time.
  base::Clock::time_point deadline{};
  // The same bytes while the scheduler still holds them (a message just
  // received, possibly not yet durable: Scheduler::submit_staged; a large
  // one's body is in its receipt file); read_message() then needs no
  // spool file.
  std::shared_ptr<const mail::Message> message;
  // A forwarded copy's SRS identity (policy::DeliveryPolicy::srs_identity):
  // the hidden forward on the slot's path, "" for none.
  std::string srs_identity;
};

// The spooled message of a request: the one way agents read it. The bytes
// held are shared, not copied (request.message); otherwise the spool file
// is read (a large message: its header section only, the body stays in
// the file, mail::read_message). A short file is an error, never a
// silently truncated message.
base::Result<std::shared_ptr<const mail::Message>> read_message(const DeliveryRequest& request);

class DeliveryAgent {
 public:
  virtual ~DeliveryAgent() = default;
  virtual void deliver(const DeliveryRequest& request, std::function<void(policy::AttemptResult)> done) = 0;
};

}  // namespace hikyaku::queue
