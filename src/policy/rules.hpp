// Purpose:   One generation of the rules mail is handled by: the loaded
//            configuration (with the per-user forwards merged in) and
//            everything the message path derives from it — the address
//            book (RCPT verdicts, plans, SRS identities of hidden forwards),
//            the delivery contract, the report writer and the list of
//            hidden addresses that logs and replies must never show.
//            Built whole, never changed: `hikyaku reload` builds a new
//            generation and installs it in a base::Live<Rules>; a reader
//            (an SMTP transaction's planning, one scheduler decision, one
//            delivery attempt) takes the current one and uses that one
//            throughout, so no decision mixes two configurations.
// Standards: DESIGN.md "Delivery semantics" (via its members).
// Trust:     the configuration is trusted; the SRS secrets stay inside the
//            address book's Rewriter.
// Concurrency: immutable after create(); const methods, any thread.
// Errors:    none (the configuration was validated when it was loaded).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.hpp"
#include "config/config.hpp"
#include "policy/address_book.hpp"
#include "policy/delivery_policy.hpp"
#include "policy/reports.hpp"

namespace hikyaku::policy {

class Rules {
 public:
  // `srs_secrets` as read from [srs] secret_file at start (empty: no SRS
  // bounce handling). `clock` must outlive the rules (null: the system
  // clock). `generation` counts loads (1 at start) for the logs.
  static std::shared_ptr<const Rules> create(std::shared_ptr<const config::Config> config,
                                             std::vector<std::string> srs_secrets, const base::Clock* clock,
                                             uint64_t generation = 1);
  // Without SRS secrets, on the system clock (tests and tools).
  static std::shared_ptr<const Rules> create(config::Config config);

  Rules(std::shared_ptr<const config::Config> config, std::vector<std::string> srs_secrets,
        const base::Clock* clock, uint64_t generation);
  Rules(const Rules&) = delete;
  Rules& operator=(const Rules&) = delete;

  const config::Config& config() const { return *config_; }
  const std::shared_ptr<const config::Config>& shared_config() const { return config_; }
  const AddressBook& addresses() const { return addresses_; }
  const DeliveryPolicy& delivery() const { return delivery_; }
  const ReportWriter& reports() const { return reports_; }
  // Every hidden forward address (lower case): redacted from logs and
  // from the remote text a report quotes.
  const std::vector<std::string>& hidden() const { return hidden_; }
  uint64_t generation() const { return generation_; }

 private:
  std::shared_ptr<const config::Config> config_;  // first: the members below refer to it
  base::SystemClock system_clock_;                // when create() is given no clock
  AddressBook addresses_;
  DeliveryPolicy delivery_;
  ReportWriter reports_;
  std::vector<std::string> hidden_;
  uint64_t generation_;
};

}  // namespace hikyaku::policy
