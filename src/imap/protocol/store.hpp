// Purpose:   The mailbox as the IMAP engine sees it (STYLE R10): a small
//            interface over one INBOX with persistent UIDs, system flags,
//            expunge and append. The server implements it on a Maildir
//            (imap/maildir_store.hpp); tests and the fuzzer use MemoryStore.
// Standards: RFC 3501 §2.3.1.1 (UIDs strictly ascending, UIDVALIDITY),
//            §2.3.2 (system flags), §2.3.2 \Recent (one session only),
//            RFC 9208 (the STORAGE quota).
// Trust:     implementations read untrusted message bytes; keys are opaque.
// Concurrency: one store object per session, used from one thread at a
//            time; implementations coordinate between sessions themselves.
// Errors:    base::Result/Status for storage failures (the engine answers
//            "NO [SERVERBUG]"/"NO" and keeps the session alive; EDQUOT:
//            "NO [OVERQUOTA]", RFC 5530 §3); a message
//            that has gone is not a failure but an empty optional (the
//            engine answers "NO [EXPUNGEISSUED]", RFC 5530 §3).
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::imap::protocol {

// Keywords (RFC 3501 §2.3.2 flag-keyword), compared case-insensitively.
using Keywords = std::vector<std::string>;

struct StoredMessage {
  uint32_t uid = 0;
  std::string key;            // store-specific identity (the Maildir unique name)
  uint8_t flags = 0;          // imap::protocol::Flag bits
  Keywords keywords;          // sorted as the store keeps them
  uint64_t size = 0;          // RFC822.SIZE: octets with CRLF line endings
  int64_t internal_date = 0;  // Unix seconds
  bool recent = false;        // first seen by this session (RFC 3501 §2.3.2)
};

// Where an appended message went: the store's UIDVALIDITY then (RFC 4315
// APPENDUID/COPYUID never carry 0) and the message's UID.
struct Appended {
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  std::string key;  // as StoredMessage::key (a failed COPY expunges its copies)
};

struct Snapshot {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 1;
  std::vector<StoredMessage> messages;  // ascending UID
};

// The error append() returns over the quota.
inline base::Error over_quota() {
  base::Error e = base::make_error("over quota");
  e.error_number = EDQUOT;
  return e;
}

class MailStore {
 public:
  virtual ~MailStore() = default;
  // The current state. StoredMessage::recent marks messages no session has
  // claimed yet; `claim_recent`: this session claims them (they are \Recent
  // for it and for no later session; Maildir: moved new/ → cur/).
  virtual base::Result<Snapshot> scan(bool claim_recent) = 0;
  // The message with CRLF line endings; nullopt when it has gone (another
  // session or a POP3 client expunged it).
  virtual base::Result<std::optional<std::string>> read(const StoredMessage& message) = 0;
  // Change the flags and keywords as they are now in the store (not as this
  // session last saw them: another session may have changed them since, and
  // "+FLAGS \Answered" must not undo its "-FLAGS \Seen"). Returns the new
  // state; nullopt when the message has gone; an error when no more
  // keywords fit.
  struct FlagState {
    uint8_t flags = 0;
    Keywords keywords;
  };
  using FlagChange = std::function<void(FlagState&)>;
  virtual base::Result<std::optional<FlagState>> update_flags(const StoredMessage& message,
                                                              const FlagChange& change) = 0;
  // Replace the flags and keywords (tests, tools).
  base::Status set_flags(const StoredMessage& message, uint8_t flags, const Keywords& keywords) {
    auto r = update_flags(message, [&](FlagState& s) {
      s.flags = flags;
      s.keywords = keywords;
    });
    if (!r) return r.error();
    return {};
  }
  virtual base::Status expunge(const StoredMessage& message) = 0;
  // The storage quota over this login's mailbox (RFC 9208 STORAGE):
  // nullopt when it has none.
  struct QuotaState {
    uint64_t used = 0;   // bytes
    uint64_t limit = 0;  // bytes
  };
  virtual base::Result<std::optional<QuotaState>> quota() { return std::optional<QuotaState>(); }
  // Store a new message (CRLF or LF). Over the quota: an Error with
  // error_number EDQUOT (the engine answers NO [OVERQUOTA]).
  virtual base::Result<Appended> append(std::string_view message, uint8_t flags, const Keywords& keywords,
                                        std::optional<int64_t> internal_date) = 0;
};

// An in-memory store for tests and the fuzzer.
class MemoryStore final : public MailStore {
 public:
  struct Entry {
    StoredMessage meta;
    std::string content;
    bool claimed = false;
  };
  uint32_t uidvalidity = 1234;
  uint32_t uidnext = 1;
  std::vector<Entry> entries;
  int64_t now = 1700000000;

  size_t max_keywords = 26;  // as a Maildir (letters a–z)
  uint64_t quota_limit = 0;  // bytes of content (0: no quota)

  base::Result<std::optional<QuotaState>> quota() override;

  uint32_t add(std::string content, uint8_t flags = 0);
  base::Result<Snapshot> scan(bool claim_recent) override;
  base::Result<std::optional<std::string>> read(const StoredMessage& message) override;
  base::Result<std::optional<FlagState>> update_flags(const StoredMessage& message,
                                                      const FlagChange& change) override;
  base::Status expunge(const StoredMessage& message) override;
  base::Result<Appended> append(std::string_view message, uint8_t flags, const Keywords& keywords,
                                std::optional<int64_t> internal_date) override;
};

}  // namespace hikyaku::imap::protocol
