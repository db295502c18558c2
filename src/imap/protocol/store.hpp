// Purpose:   The mailboxes as the IMAP engine sees them (STYLE R10): a
//            MailAccount is one login's folders (list, create, delete,
//            rename, subscriptions, the quota over all of them); a MailStore
//            is one folder with persistent UIDs, system flags, keywords,
//            expunge and append. The server implements them on a Maildir
//            and its Maildir++ folders (imap/maildir_store.hpp); tests and
//            the fuzzer use MemoryAccount/MemoryStore.
// Names:     folder names are given as the engine has checked them: the
//            wire form (modified UTF-7, RFC 3501 §5.1.3), "/" between the
//            levels, no empty level, no wildcard, "INBOX" in capitals.
// Standards: RFC 3501 §2.3.1.1 (UIDs strictly ascending, UIDVALIDITY),
//            §2.3.2 (system flags), §2.3.2 \Recent (one session only),
//            RFC 9208 (the STORAGE quota), RFC 7162 §3.1 (CONDSTORE: a
//            MODSEQ per message and the folder's HIGHESTMODSEQ, kept by the
//            store so that every session and a restart agree on them),
//            RFC 3502 §6.3.11 (MULTIAPPEND: several messages, all or none).
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
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::imap::protocol {

// Keywords (RFC 3501 §2.3.2 flag-keyword), compared case-insensitively.
using Keywords = std::vector<std::string>;

// A message's identity in its store (the Maildir unique name): opaque and
// immutable, so every copy shares one string. Each selected session keeps
// one per message in its view (issue 15: a phone idles on a large INBOX);
// copies taken from one scan point at the same name.
class MessageKey {
 public:
  MessageKey() = default;
  MessageKey(std::string name)  // NOLINT(google-explicit-constructor): keys are made from names
      : name_(std::make_shared<const std::string>(std::move(name))) {}
  MessageKey(const char* name) : MessageKey(std::string(name)) {}  // NOLINT(google-explicit-constructor)
  const std::string& str() const { return name_ ? *name_ : empty(); }
  friend bool operator==(const MessageKey& a, const MessageKey& b) { return a.str() == b.str(); }

 private:
  static const std::string& empty() {
    static const std::string none;
    return none;
  }
  std::shared_ptr<const std::string> name_;
};

// Every selected session keeps one per message (Engine's view): the
// members are ordered so that none is padded (72 bytes, where a string key
// without that order took 104 and a heap block).
struct StoredMessage {
  MessageKey key;             // store-specific identity (the Maildir unique name)
  Keywords keywords;          // sorted as the store keeps them
  uint64_t size = 0;          // RFC822.SIZE: octets with CRLF line endings
  int64_t internal_date = 0;  // Unix seconds
  uint64_t modseq = 0;        // RFC 7162 §3.1 MODSEQ (>= 1; 0: the store keeps none)
  uint32_t uid = 0;
  uint8_t flags = 0;          // imap::protocol::Flag bits
  bool recent = false;        // first seen by this session (RFC 3501 §2.3.2)
};

// Where an appended message went: the store's UIDVALIDITY then (RFC 4315
// APPENDUID/COPYUID never carry 0) and the message's UID.
struct Appended {
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  MessageKey key;  // as StoredMessage::key (a failed COPY expunges its copies)
};

// One message to store (APPEND; RFC 3502 MULTIAPPEND gives several).
struct NewMessage {
  std::string_view content;  // CRLF or LF
  uint8_t flags = 0;
  Keywords keywords;
  std::optional<int64_t> internal_date;
};

struct Snapshot {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 1;
  uint64_t highest_modseq = 0;          // RFC 7162 HIGHESTMODSEQ; 0: none kept (NOMODSEQ)
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
  // True when the folder has been deleted or renamed away since it was
  // opened (by another session or another program).
  virtual bool gone() const = 0;
  // The message with CRLF line endings; nullopt when it has gone (another
  // session or a POP3 client expunged it).
  virtual base::Result<std::optional<std::string>> read(const StoredMessage& message) = 0;
  // Change the flags and keywords as they are now in the store (not as this
  // session last saw them: another session may have changed them since, and
  // "+FLAGS \Answered" must not undo its "-FLAGS \Seen"). Returns the new
  // state; nullopt when the message has gone; an error when no more
  // keywords fit. The change runs under the store's lock, so a test of
  // `modseq` there (RFC 7162 §3.1.3 UNCHANGEDSINCE) is atomic with respect
  // to other sessions; setting `skip` leaves the message as it is. A change
  // that changes the flags or keywords gives the message a new MODSEQ.
  struct FlagState {
    uint8_t flags = 0;
    Keywords keywords;
    uint64_t modseq = 0;  // in: MODSEQ before the change; out: after it
    bool skip = false;    // set by a change that must not apply (UNCHANGEDSINCE failed): nothing is written
  };
  using FlagChange = std::function<void(FlagState&)>;
  using FlagResult = base::Result<std::optional<FlagState>>;
  virtual FlagResult update_flags(const StoredMessage& message, const FlagChange& change) = 0;
  // update_flags for each message, in order, results in the same order
  // (MaildirStore: one lock and one uidlist rewrite for all of them, so a
  // STORE 1:* costs one fsync, not one per message).
  virtual std::vector<FlagResult> update_flags_all(const std::vector<StoredMessage>& messages,
                                                   const FlagChange& change) {
    std::vector<FlagResult> out;
    out.reserve(messages.size());
    for (const auto& m : messages) out.push_back(update_flags(m, change));
    return out;
  }
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
  // EXPUNGE and CLOSE (RFC 3501 §6.4.2, §6.4.3): remove the message only if
  // it has \Deleted now, not as the caller last saw it (another session
  // may have cleared it since). true: removed, or already gone; false:
  // kept, no longer \Deleted.
  virtual base::Result<bool> expunge_if_deleted(const StoredMessage& message) = 0;
  // Store a new message (CRLF or LF). Over the quota: an Error with
  // error_number EDQUOT (the engine answers NO [OVERQUOTA]).
  virtual base::Result<Appended> append(std::string_view message, uint8_t flags, const Keywords& keywords,
                                        std::optional<int64_t> internal_date) = 0;
  // Store several messages, all or none (RFC 3502 §6.3.11): on an error
  // none of them is left in the folder. Results in the order given, UIDs
  // ascending. This default appends one by one and expunges what it added
  // when one fails (another session may glimpse them meanwhile);
  // MaildirStore does it under one lock, so no session sees a part.
  virtual base::Result<std::vector<Appended>> append_all(const std::vector<NewMessage>& messages);
};

// One folder as MailAccount::folders() lists it.
struct Folder {
  std::string name;         // as described under Names above
  std::string special_use;  // RFC 6154 attribute ("\\Sent"), or empty
};

// The RFC 6154 special uses a folder can be created with (CREATE-SPECIAL-USE):
// \All and \Flagged name virtual folders, which hikyaku does not have.
inline constexpr const char* kStorableSpecialUses[] = {"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"};

// The storage quota over a login's folders (RFC 9208 STORAGE).
struct QuotaState {
  uint64_t used = 0;   // bytes
  uint64_t limit = 0;  // bytes
};

// One login's folders. Errors carry an errno the engine answers by (RFC
// 5530): ENOENT "NO [NONEXISTENT]", EEXIST "NO [ALREADYEXISTS]", EINVAL
// "NO [CANNOT]" (a name the store cannot keep, the text says why), others
// "NO [SERVERBUG]".
class MailAccount {
 public:
  virtual ~MailAccount() = default;
  // Every folder that exists, INBOX first.
  virtual base::Result<std::vector<Folder>> folders() = 0;
  // Subscribed names (RFC 3501 §6.3.6: they need not exist); INBOX always.
  virtual base::Result<std::vector<std::string>> subscriptions() = 0;
  virtual base::Status subscribe(const std::string& name, bool subscribed) = 0;
  // The folder's store (ENOENT: no such folder).
  virtual base::Result<std::shared_ptr<MailStore>> open(const std::string& name) = 0;
  // SPECIAL_USE: an RFC 6154 attribute ("\\Sent") the folder keeps (also
  // across RENAME), or empty: the engine has checked it against
  // kStorableSpecialUses.
  virtual base::Status create(const std::string& name, const std::string& special_use) = 0;
  // Removes the folder and its messages, not its children (EINVAL: INBOX).
  virtual base::Status remove(const std::string& name) = 0;
  // Renames the folder and its children; INBOX (RFC 3501 §6.3.5): moves
  // its messages to the new folder and stays, empty.
  virtual base::Status rename(const std::string& from, const std::string& to) = 0;
  // nullopt when the login has no quota.
  virtual base::Result<std::optional<QuotaState>> quota() { return std::optional<QuotaState>(); }
};

class MemoryAccount;

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
  uint64_t highest_modseq = 1;  // RFC 7162: the first message gets 2
  std::vector<Entry> entries;   // another session's flag change: set_flags(), which numbers it
  int64_t now = 1700000000;
  size_t reads = 0;  // read() calls, so tests can count them

  size_t max_keywords = 26;  // as a Maildir (letters a–z)
  const MemoryAccount* account = nullptr;  // whose quota append() keeps

  bool removed = false;  // MemoryAccount::remove() took it away

  uint32_t add(std::string content, uint8_t flags = 0);
  base::Result<Snapshot> scan(bool claim_recent) override;
  bool gone() const override { return removed; }
  base::Result<std::optional<std::string>> read(const StoredMessage& message) override;
  FlagResult update_flags(const StoredMessage& message, const FlagChange& change) override;
  base::Status expunge(const StoredMessage& message) override;
  base::Result<bool> expunge_if_deleted(const StoredMessage& message) override;
  base::Result<Appended> append(std::string_view message, uint8_t flags, const Keywords& keywords,
                                std::optional<int64_t> internal_date) override;
};

// In-memory folders for tests and the fuzzer: INBOX exists from the start.
class MemoryAccount final : public MailAccount {
 public:
  MemoryAccount();
  MemoryAccount(const MemoryAccount&) = delete;  // its stores point back to it
  MemoryAccount& operator=(const MemoryAccount&) = delete;
  MemoryStore& inbox() { return *stores.at("INBOX"); }

  std::map<std::string, std::shared_ptr<MemoryStore>> stores;  // name → folder
  std::map<std::string, std::string> special_uses;             // name → "\\Sent"...
  std::set<std::string> subscribed;
  uint64_t quota_limit = 0;  // bytes of content over all folders (0: no quota)
  uint32_t next_uidvalidity = 1234;

  uint64_t used() const;
  base::Result<std::vector<Folder>> folders() override;
  base::Result<std::vector<std::string>> subscriptions() override;
  base::Status subscribe(const std::string& name, bool on) override;
  base::Result<std::shared_ptr<MailStore>> open(const std::string& name) override;
  base::Status create(const std::string& name, const std::string& special_use) override;
  base::Status remove(const std::string& name) override;
  base::Status rename(const std::string& from, const std::string& to) override;
  base::Result<std::optional<QuotaState>> quota() override;
};

// An Error with the errno a MailAccount answers by.
inline base::Error account_error(int error_number, std::string text) {
  base::Error e = base::make_error(std::move(text));
  e.error_number = error_number;
  return e;
}

}  // namespace hikyaku::imap::protocol
