// Purpose:   Local delivery (DeliveryAgent for mail::Target::Kind::mailbox):
//            read the spooled message, prefix Return-Path and Delivered-To
//            (and X-Hikyaku-Diverted on a diverted copy),
//            and store it with mailbox::Maildir::deliver() in the
//            mailbox's directory (its part of the configuration: Settings).
// Standards: RFC 5321 §4.4 (the delivering server adds Return-Path with the
//            MAIL FROM reverse-path), Maildir (via mailbox::Maildir).
// Trust:     the mailbox name comes from the plan (the configuration when
//            the message was accepted, or a remembered hidden forward's
//            fallback: config/known_forwards.hpp), never from the network;
//            it must be a valid [[mailbox]] name (mail::valid_mailbox_name),
//            so no plan can write outside DATA_DIR/mailboxes.
// Removed mailboxes: a mailbox the configuration no longer has (removed by
//            a reload or before a restart) still takes the mail queued for
//            it, into its Maildir, created again if it is gone, with a
//            warning naming the mailbox: accepted mail is never failed, and
//            a hidden forward's diverted copy never dropped, because the
//            operator edited the file meanwhile. Put the [[mailbox]] back to
//            read it.
// Spares:    after a diverted copy, the agent creates the mailbox's next
//            file ahead (mailbox::Maildir::Spare; at most kSpares mailboxes,
//            each spare used within kSpareAge or dropped), so the next
//            refused forward's copy is written, flushed and linked without
//            the create: the costly step on ext4. The spare is made after
//            `done`, off the path of the copy that was waited for.
// Concurrency: deliver() is synchronous, blocking (write + fdatasync) and
//            thread-safe (as is configure()); `done` is called before it returns, on the calling
//            queue thread.
// Quota:     a mailbox with a [[mailbox]] quota that this message would take
//            over it (mailbox::Quota, recalculated here when its file is
//            stale) is not written: temporary 4.2.2, so the queue retries
//            and, in the end, applies the target's failure rules — a spam
//            flood into a fallback mailbox cannot fill the disk the spool
//            needs.
// Errors:    outcomes, never exceptions: an invalid mailbox name (a damaged
//            plan) → permanent 5.1.1;
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
#include "mailbox/maildir.hpp"
#include "queue/delivery_agent.hpp"

namespace hikyaku::delivery {

class MaildirAgent final : public queue::DeliveryAgent {
 public:
  // The agent's part of the configuration.
  struct Settings {
    std::filesystem::path mailboxes_dir;  // DATA_DIR/mailboxes: one Maildir per [[mailbox]] name
    std::set<std::string> mailboxes;      // the configured [[mailbox]] names (others: a warning)
    std::map<std::string, uint64_t> quotas;  // [[mailbox]] quota in bytes, where one is set
    bool sync = true;                     // false skips fsyncs (tests only)

    static Settings from(const config::Config& config);
  };

  explicit MaildirAgent(Settings settings);
  // The configured mailboxes and their quotas become `config`'s (a reload).
  void configure(const config::Config& config);
  void deliver(const queue::DeliveryRequest& request,
               std::function<void(policy::AttemptResult)> done) override;

 private:
  bool configured(const std::string& mailbox) const;
  uint64_t quota_of(const std::string& mailbox) const;
  mailbox::Maildir::Spare take_spare(const std::string& mailbox);
  void make_spare(const std::string& mailbox, const mailbox::Maildir& maildir);

  Settings settings_;  // mailboxes and quotas guarded by mu_; the rest const
  // A file created ahead for the next delivery to each mailbox delivered
  // to lately (mailbox::Maildir::Spare): at most kSpares, each used within
  // kSpareAge or dropped.
  std::map<std::string, mailbox::Maildir::Spare> spares_;  // guarded by mu_
  mutable std::mutex mu_;
};

}  // namespace hikyaku::delivery
