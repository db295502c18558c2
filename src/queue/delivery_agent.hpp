// Purpose:   The interface between the queue and the outside world (Postfix:
//            the queue manager "does not talk to the outside world"): the
//            scheduler hands one delivery (one recipient, one target) to an
//            agent and gets a typed outcome back. Agents: Maildir (local),
//            SMTP client (forwards/relays), notices. `app` wires them in.
// Concurrency: deliver() may be called from any scheduler worker thread and
//            may complete on any thread; `done` must be called exactly once.
//            deliver_now() is called on the event loop and must not block.
// Errors:    every failure is a DeliveryOutcome, never an exception.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/clock.hpp"
#include "base/result.hpp"
#include "config/config.hpp"
#include "mail/envelope.hpp"

namespace hikyaku::queue {

// Where a queued message came from (spool header fact "origin"). Generated
// messages are never diverted and never bounced (issue 3: notices, DSNs).
enum class Origin { received, notice, dsn };

struct DeliveryRequest {
  std::string queue_id;
  const mail::Envelope* envelope = nullptr;
  std::filesystem::path message_path;  // the immutable spooled message
  uint64_t message_offset = 0;         // where the message bytes start in that file
  uint64_t message_size = 0;
  std::string recipient;               // the original recipient address
  config::Target target;               // mailbox:NAME / forward:ADDR
  // Set on a diverted copy (a fallback link): the value of the
  // X-Hikyaku-Diverted header the agent puts first (DESIGN.md).
  std::string diverted;
  Origin origin = Origin::received;
  // Earlier attempts of this target (0: the first). The SMTP client's TLS
  // policy falls back to plaintext after a failed handshake only on a retry.
  unsigned attempts = 0;
  // When the slot must divert if still undelivered (its defer_limit; epoch:
  // none). An agent that would only be waiting (a slowed-down destination)
  // answers temporary by then, so the diversion happens on time.
  base::Clock::time_point deadline{};
  // The same bytes in memory while the scheduler still holds them (a message
  // just received, possibly not yet durable: Scheduler::submit_staged);
  // read_message() then needs no file.
  std::shared_ptr<const std::string> message;
};

struct DeliveryOutcome {
  enum class Kind { delivered, temporary, permanent };
  Kind kind = Kind::temporary;
  std::string status;  // enhanced status, e.g. "2.0.0", "4.4.1", "5.7.1"
  std::string detail;  // the remote reply or local error, for logs and DSNs
};

// The spooled message of a request, or its first `max` bytes (the loop
// guard reads only the header): the one way agents and guards read it. A
// short file is an error, never a silently truncated message.
base::Result<std::string> read_message(const DeliveryRequest& request, uint64_t max = UINT64_MAX);

class DeliveryAgent {
 public:
  virtual ~DeliveryAgent() = default;
  virtual void deliver(const DeliveryRequest& request, std::function<void(DeliveryOutcome)> done) = 0;

  // deliver() for a caller that must not block (the event loop, with a
  // message just received), on the plain path only: true when it went
  // ahead as deliver() would (`done` is called later, never within this
  // call); false when going ahead would block or cost much CPU (a file to
  // read, a DNS answer not cached, a signature to make) or when the
  // delivery would end at once (a loop, a DMARC diversion): then nothing
  // was done, `done` is dropped uncalled, and the caller hands the request
  // to deliver() on a worker thread. Default: false.
  virtual bool deliver_now(const DeliveryRequest& request, std::function<void(DeliveryOutcome)> done);
};

}  // namespace hikyaku::queue
