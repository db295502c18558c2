// Purpose:   Local delivery (DeliveryAgent for mail::Target::Kind::mailbox):
//            read the spooled message, prefix Return-Path and Delivered-To
//            (and X-Hikyaku-Diverted on a diverted copy),
//            and store it with mailbox::Maildir::deliver() in the
//            mailbox's directory (its part of the configuration: Settings).
// Standards: RFC 5321 §4.4 (the delivering server adds Return-Path with the
//            MAIL FROM reverse-path), Maildir (via mailbox::Maildir).
// Trust:     the mailbox name comes from the configuration (the plan), never
//            from the network; it is checked against the configured
//            mailboxes so a stale plan cannot write outside DATA_DIR/mailboxes.
//            `hikyaku reload` adds the mailboxes a new configuration names
//            (add_mailboxes, before any plan can name them); a mailbox a
//            reload removes stays known until a restart, so mail queued for
//            it is still delivered into its Maildir (never failed).
// Concurrency: deliver() is synchronous, blocking (write + fdatasync) and
//            thread-safe (as is add_mailboxes()); `done` is called before it returns, on the calling
//            queue thread.
// Quota:     a mailbox with a [[mailbox]] quota that this message would take
//            over it (mailbox::Quota, recalculated here when its file is
//            stale) is not written: temporary 4.2.2, so the queue retries
//            and, in the end, applies the target's failure rules — a spam
//            flood into a fallback mailbox cannot fill the disk the spool
//            needs.
// Errors:    outcomes, never exceptions: unknown mailbox → permanent 5.1.1;
//            mailbox over its quota → temporary 4.2.2; disk full/file
//            system quota → temporary 4.3.1; other I/O → temporary 4.3.0.
//            Idempotence: a crash after the Maildir link but before the
//            queue records "delivered" delivers again after restart — a
//            duplicate, never a loss (measured by tests/integration/test_crash.py).
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "config/config.hpp"
#include "queue/delivery_agent.hpp"

namespace hikyaku::delivery {

class MaildirAgent final : public queue::DeliveryAgent {
 public:
  // The agent's part of the configuration.
  struct Settings {
    std::filesystem::path mailboxes_dir;  // DATA_DIR/mailboxes: one Maildir per [[mailbox]] name
    std::set<std::string> mailboxes;      // the configured [[mailbox]] names
    std::map<std::string, uint64_t> quotas;  // [[mailbox]] quota in bytes, where one is set
    bool sync = true;                     // false skips fsyncs (tests only)

    static Settings from(const config::Config& config);
  };

  explicit MaildirAgent(Settings settings);
  // The [[mailbox]] names of `config` become known too (none is forgotten);
  // their quotas become config's.
  void add_mailboxes(const config::Config& config);
  void deliver(const queue::DeliveryRequest& request,
               std::function<void(policy::AttemptResult)> done) override;

 private:
  bool known(const std::string& mailbox) const;
  uint64_t quota_of(const std::string& mailbox) const;

  Settings settings_;  // mailboxes and quotas guarded by mu_; the rest const
  mutable std::mutex mu_;
};

}  // namespace hikyaku::delivery
