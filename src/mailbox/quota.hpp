// Purpose:   A mailbox's storage quota ([[mailbox]] quota = "5G"), kept as
//            Maildir++ quota: the file DIR/maildirsize whose first line
//            defines the limit ("<bytes>S") and whose other lines are
//            "<bytes> <messages>" changes, summed. Every writer of the
//            Maildir (delivery, IMAP APPEND/COPY/EXPUNGE, POP3 DELE:
//            mailbox::Maildir) appends its change with one O_APPEND write
//            when the file exists, so reading the usage costs one small
//            read, not a scan of every folder. Dovecot (quota = maildir) and
//            Courier read and update the same file.
//            The file is recalculated (the Maildir and every Maildir++
//            folder ".NAME" scanned, sizes from the ",S=" of the names, else
//            stat; written to tmp/, renamed over) when it is missing or
//            malformed, defines another limit, has grown to 5120 bytes, or
//            says "over the limit" and is older than 15 minutes (other
//            programs, mutt for one, remove messages without updating it).
// Standards: Maildir++ quota (Courier's maildirquota, as Dovecot's maildir
//            quota backend implements it).
// Trust:     the file is ours but may be edited by other programs: anything
//            malformed is recalculated, never trusted, never a crash.
// Concurrency: safe from several threads and processes. A change appended
//            while another process recalculates may be lost; the usage is
//            then off by that message until the next recalculation (the
//            Maildir++ rule: quotas are approximate, never a lost message).
// Errors:    Result/Status with errno text. record_change() never fails the
//            caller: a quota file that cannot be updated is recalculated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "base/result.hpp"

namespace hikyaku::mailbox {

struct QuotaUsage {
  uint64_t bytes = 0;     // on disk (the ",S=" sizes)
  uint64_t messages = 0;
};

// The usage a maildirsize text records for `limit`: nullopt when it is
// malformed (including a torn last line), negative, or defines another
// storage limit. Pure: the parser the fuzzer drives.
std::optional<QuotaUsage> parse_maildirsize(std::string_view text, uint64_t limit);

class Quota {
 public:
  // `root`: the Maildir (DATA_DIR/mailboxes/NAME); `limit`: bytes (> 0).
  Quota(std::filesystem::path root, uint64_t limit);

  uint64_t limit() const { return limit_; }
  // What maildirsize says, without scanning anything (cheap enough for an
  // SMTP RCPT on the event loop); nullopt when it cannot be trusted as it
  // is and must be recalculated (see above) or does not exist.
  std::optional<QuotaUsage> recorded() const;
  // The usage, recalculated first when recorded() has no answer.
  base::Result<QuotaUsage> usage() const;
  // Scan the Maildir and its folders and rewrite maildirsize.
  base::Result<QuotaUsage> recalculate() const;

  // At or over the limit: nothing more is accepted.
  bool full(const QuotaUsage& u) const { return u.bytes >= limit_; }
  // Would `more` bytes go over the limit?
  bool exceeded_by(const QuotaUsage& u, uint64_t more) const { return u.bytes + more > limit_; }

  // Record a change of the Maildir at `root` in its maildirsize, if it has
  // one (a Maildir without a quota has none and gets none).
  static void record_change(const std::filesystem::path& root, int64_t bytes, int64_t messages);

 private:
  std::filesystem::path root_;
  uint64_t limit_;
};

}  // namespace hikyaku::mailbox
