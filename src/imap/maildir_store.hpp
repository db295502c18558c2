// Purpose:   The IMAP view of a login's Maildir. MaildirAccount
//            (protocol::MailAccount) is the Maildir and its Maildir++
//            folders: folder "a/b" is the directory ROOT/.a.b (tmp/ new/
//            cur/ and an empty "maildirfolder" file), its name on disk the
//            wire name (modified UTF-7) with "." between the levels, as
//            Dovecot's default Maildir++ layout keeps it with "/" as the
//            separator, so Dovecot on the same tree shows the same folders.
//            "." cannot be part of a name (it separates levels on disk).
//            Sent, Drafts, Trash, Junk and Archive are created at login and
//            carry their RFC 6154 special use by name; a folder created
//            with one (CREATE-SPECIAL-USE) keeps it in its own file,
//            FOLDER/hikyaku-special-use, which moves with it on RENAME. Subscriptions are
//            ROOT/subscriptions, one name per line with "." between the
//            levels (Dovecot's version-1 file for Maildir++; INBOX is
//            always subscribed); ROOT/hikyaku-uidvalidity keeps the last UIDVALIDITY
//            given, so a folder deleted and created again within a second
//            still gets a new one (RFC 3501 §2.3.1.1).
//            MaildirStore (protocol::MailStore) is one folder: persistent
//            UIDs, UIDVALIDITY and modseqs in MAILDIR/hikyaku-uidlist (in the
//            spirit of Dovecot's dovecot-uidlist: "hikyaku-uidlist 2 VALIDITY
//            NEXT FIRST-RECENT HIGHESTMODSEQ" then one "UID UNIQUE-NAME
//            MODSEQ 2,LETTERS" line per message: the info letters as last
//            numbered, so a rename by anyone — another session, POP3, mutt —
//            gets the next modseq at the next scan), rewritten atomically
//            (base::write_file_durable) whenever UIDs are assigned, flags
//            change or messages have gone. Version 1 lists (no modseqs) are
//            read and rewritten as version 2; an older hikyaku cannot read
//            version 2 and starts a new UIDVALIDITY (clients refetch, no
//            mail is lost). System flags live in the
//            Maildir info suffix ":2,DFRST"; a session that selects the
//            mailbox read-write claims the messages numbered since the last
//            claim (FIRST-RECENT): they are \Recent for that session only
//            (appended and copied messages too), and it moves new/ → cur/
//            (the Maildir reader's rule).
//            Keywords are lower-case info letters a–z, named in
//            MAILDIR/dovecot-keywords ("INDEX NAME" lines, the Dovecot
//            convention, so Dovecot and hikyaku agree); at most 26.
//            Sizes are the CRLF sizes (W=); read() serves CRLF.
//            A quota ([[mailbox]] quota) is Maildir++'s maildirsize
//            (mailbox::Quota): APPEND and COPY that would go over it fail
//            with EDQUOT.
//            APPEND of several messages (RFC 3502 MULTIAPPEND) holds the
//            lock for all of them: each is written and flushed in tmp/
//            (Maildir::stage), then all are linked into cur/ with their
//            flags and cur/ is flushed once (Maildir::publish, which takes
//            back the ones it linked if one fails): no reader, in this
//            process or another, ever sees a part of the batch.
// Rescan:    every selected-state command scans the folder, and a full
//            scan lists cur/ and new/ (25 ms for 10,000 messages). A scan
//            reuses the previous one's result, without listing, when
//            nothing it read can have changed since: before a full scan
//            the time T is read (CLOCK_REALTIME_COARSE, the clock the
//            kernel stamps files with) and then cur/, new/, the uidlist
//            and dovecot-keywords are stat'ed (all that the scan reads:
//            message bytes never change, and the sizes and dates taken from
//            them are kept per message anyway). The next scan restats them
//            and reuses the result only when (dev, ino, size, mtime, ctime)
//            are all unchanged (an object still absent counts as unchanged)
//            AND every one of those mtimes and ctimes was older than T - 1 s.
//            Any later change to an entry of cur/ or new/ (delivery, rename,
//            unlink) or a replaced uidlist or keywords file then gets a
//            ctime of at least T truncated to the file system's granularity
//            (≤ 1 s), which differs from the remembered one; ctime cannot be
//            set back by utimensat. No inotify: the decision is made on
//            the command's own thread, so a change made before the command
//            is always seen. A claim (read-write scan) is never answered
//            from a result that left anything to claim. The result is the
//            folder's, shared by every session of this process
//            (SharedFolder), and so is what a scan learnt of each file
//            (where it is, its sizes, its internal date): changes made
//            through any of them (flags, expunge, append) drop it. Assumes the
//            files are stamped by this host's clock and it does not jump
//            back by more than 1 s (a local file system; Dovecot's Maildir
//            sync makes the same assumption).
// Standards: RFC 3501 §2.3.1.1 (UIDs strictly ascending, never reused
//            under one UIDVALIDITY), §2.3.2 (flags, \Recent); RFC 7162
//            §3.1 (MODSEQ: strictly ascending, never going back, the
//            counter kept in the uidlist and bumped under the lock); Maildir
//            (cr.yp.to/proto/maildir.html: info ":2,", new/ → cur/).
// Trust:     file names in the Maildir may come from other programs: they
//            are only parsed; the uidlist is ours and is re-created (with a
//            new UIDVALIDITY) when it cannot be parsed.
//            A folder is deleted by renaming it into ROOT/tmp/ (out of every
//            listing at once) and then removing it.
// Concurrency: every method may block (disk, flock): call it from the
//            worker pool. Sessions of one process share each folder's
//            state and its mutex (MailboxLocks, SharedFolder); other
//            processes, and POP3's RETR, are excluded by flock(2) on
//            MAILDIR/hikyaku-uidlist.lock (Maildir::lock_names). Both are
//            held only for the
//            duration of one call; read() takes only the mutex, to copy
//            where the message was seen.
// Errors:    Result/Status with errno text; nothing throws.
#pragma once

#include <array>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "imap/protocol/store.hpp"
#include "imap/quiet_moves.hpp"
#include "mailbox/maildir.hpp"
#include "mailbox/uidlist.hpp"

namespace hikyaku::imap {

struct SharedFolder;  // below MaildirStore

// What this process knows of each open folder, shared by every IMAP session
// (issue 15: a phone in IDLE on a 10,000-message INBOX should not cost a
// copy of that knowledge per connection). An entry lives while a store (or
// a caller holding its mutex) holds it, and is made anew after that.
class MailboxLocks {
 public:
  // The state of the folder at `directory` (any key; the subscriptions file
  // uses its path): the same object for every caller while one holds it.
  std::shared_ptr<SharedFolder> folder(const std::string& directory);
  // The mutex of folder(key), for callers that need nothing else.
  std::shared_ptr<std::mutex> mutex_for(const std::string& key);

 private:
  std::mutex mutex_;
  std::map<std::string, std::weak_ptr<SharedFolder>> table_;
  size_t sweep_at_ = 64;  // table size at which expired entries are erased
};

class MaildirStore final : public protocol::MailStore {
 public:
  // `quota`: the mailbox's storage limit in bytes (0: none), kept in
  // maildirsize at the top Maildir (mailbox::Quota). `quiet`: where its
  // claims (new/ → cur/) are noted for the IDLE watch; may be null.
  // `folder`: MailboxLocks::folder of the Maildir's directory.
  MaildirStore(mailbox::Maildir maildir, std::shared_ptr<SharedFolder> folder, bool sync = true, uint64_t quota = 0,
               std::shared_ptr<QuietMoves> quiet = nullptr);

  base::Result<protocol::Snapshot> scan(bool claim_recent) override;
  bool gone() const override;
  base::Result<std::optional<std::string>> read(const protocol::StoredMessage& message) override;
  FlagResult update_flags(const protocol::StoredMessage& message, const FlagChange& change) override;
  // One lock, one uidlist rewrite (and fsync) for all the messages.
  std::vector<FlagResult> update_flags_all(const std::vector<protocol::StoredMessage>& messages,
                                           const FlagChange& change) override;
  base::Status expunge(const protocol::StoredMessage& message) override;
  base::Result<bool> expunge_if_deleted(const protocol::StoredMessage& message) override;
  base::Result<protocol::Appended> append(std::string_view message, uint8_t flags, const protocol::Keywords& keywords,
                                std::optional<int64_t> internal_date) override;
  // Under one lock: every message delivered, or (on an error) none left.
  base::Result<std::vector<protocol::Appended>> append_all(const std::vector<protocol::NewMessage>& messages) override;

  static constexpr const char* kUidListName = "hikyaku-uidlist";

  // Scans that listed the folder (not answered from the previous one).
  size_t full_scans_for_test() const { return full_scans_; }
  // The scans' T runs `seconds` ahead, as if every timestamp were that much
  // older: a test can set mtimes back (utimensat) but not ctimes.
  void clock_ahead_for_test(time_t seconds) { clock_ahead_ = seconds; }

  // The kept result's types (public: SharedFolder holds one).
  // One file-system object a scan reads, as stat(2) saw it (see Rescan).
  struct Stamp {
    int error = 0;  // the stat's errno (ENOENT: absent); 0: the fields below are set
    uint64_t dev = 0;
    uint64_t ino = 0;
    int64_t size = 0;
    timespec mtime{};
    timespec ctime{};
    bool operator==(const Stamp& o) const;
  };
  using Stamps = std::array<Stamp, 4>;  // cur/, new/, the uidlist, dovecot-keywords
  // The last full scan's result, kept while it may be reused. What a scan
  // returns beyond the files is \Recent, which depends on who asks: the
  // kept copy says it as a scan that claims nothing would now (after a
  // claim: nothing is recent), and a claim is not answered from it when it
  // would change something (uidlist FIRST-RECENT below UIDNEXT, or a file
  // left in new/). The session's own \Recent view lives in the engine,
  // which takes it from the scan that first showed it a message.
  struct LastScan {
    Stamps stamps;
    protocol::Snapshot snapshot;
    bool claimable = false;
  };

 private:
  Stamps stamp() const;
  // The previous result when the Rescan rule allows it (the lock held).
  std::optional<protocol::Snapshot> reuse(bool claim_recent) const;
  // Keep a full scan's result when the Rescan rule will allow its reuse.
  void remember(const Stamps& stamps, const timespec& started, const protocol::Snapshot& snap,
                uint32_t first_recent, uint32_t next);

  struct Held;  // the mutex and the flock, released together
  base::Result<std::unique_ptr<Held>> lock();
  base::Result<protocol::Snapshot> scan_locked(bool claim_recent);
  // Messages of `uids` that `listed` lacks, looked for again (appended to
  // `listed` when found): see the .cpp.
  base::Status relist_missing(std::vector<mailbox::MessageInfo>& listed, const mailbox::UidList& uids);
  // Where the last scan saw message `key` (the lock held).
  const mailbox::MessageInfo* lookup(const std::string& key) const;
  // lookup() as a copy, under the process's mutex only (read, expunge).
  std::optional<mailbox::MessageInfo> seen(const std::string& key) const;
  // The info letters for flags + keywords, allocating keyword letters (and
  // rewriting dovecot-keywords) as needed; an error past 26 keywords.
  // Call with the lock held.
  base::Result<std::string> letters_for(const std::string& current, uint8_t flags,
                                        const protocol::Keywords& keywords);
  protocol::Keywords keywords_of(const std::string& letters) const;
  void load_keywords();

  // Flag changes and new/ → cur/ are renames without fsync (as Dovecot's
  // default): a crash can only undo a flag change, never lose a message, and
  // a phone selecting 100 new messages should not wait for 200 fsyncs. (Made
  // when needed: a store kept by an idle session holds one Maildir, not two.)
  mailbox::Maildir renames() const { return mailbox::Maildir(maildir_.root(), false); }

  mailbox::Maildir maildir_;
  std::shared_ptr<SharedFolder> folder_;  // known, keyword names, last scan: see SharedFolder
  bool sync_;
  uint64_t quota_;  // bytes; 0: none
  std::shared_ptr<QuietMoves> quiet_;
  size_t full_scans_ = 0;
  time_t clock_ahead_ = 0;  // tests only
};

// One folder as the stores of every session know it, guarded by `mutex`
// (held with the folder's flock, MaildirStore::lock). Whatever one session
// learns or changes is what every other one reuses or rescans: the Rescan
// rule's result is about the folder, not about who asked.
struct SharedFolder {
  std::mutex mutex;
  mailbox::Maildir::Known known;  // unique name → last seen location, sizes, internal date
  std::vector<std::string> keyword_names;             // index (letter - 'a') → name
  std::optional<MaildirStore::LastScan> last;         // empty: the next scan lists the folder
  // Unique names this process's sessions expunged since the last full scan:
  // gone for sure, so the scan does not look for them again (relist_missing).
  std::unordered_set<std::string> expunged;
};

class MaildirAccount final : public protocol::MailAccount {
 public:
  // `root`: the login's Maildir (it exists); `quota`: bytes, 0 for none.
  // `quiet`: handed to the folders' stores (MaildirStore); may be null.
  MaildirAccount(mailbox::Maildir root, std::shared_ptr<MailboxLocks> locks, uint64_t quota,
                 std::shared_ptr<QuietMoves> quiet = nullptr);

  // Create the special-use folders that are missing (at login).
  base::Status create_special_folders();
  // The directory of folder `name` ("INBOX": the root).
  static std::filesystem::path directory_of(const std::filesystem::path& root, const std::string& name);

  base::Result<std::vector<protocol::Folder>> folders() override;
  base::Result<std::vector<std::string>> subscriptions() override;
  base::Status subscribe(const std::string& name, bool subscribed) override;
  base::Result<std::shared_ptr<protocol::MailStore>> open(const std::string& name) override;
  base::Status create(const std::string& name, const std::string& special_use) override;
  base::Status remove(const std::string& name) override;
  base::Status rename(const std::string& from, const std::string& to) override;
  base::Result<std::optional<protocol::QuotaState>> quota() override;

 private:
  // The on-disk directory name (".a.b") of a folder name, or EINVAL.
  static base::Result<std::string> dir_name(const std::string& name);
  base::Status make_folder(const std::string& name, const std::string& special_use) const;

  mailbox::Maildir root_;
  std::shared_ptr<MailboxLocks> locks_;
  uint64_t quota_;
  std::shared_ptr<QuietMoves> quiet_;
};

}  // namespace hikyaku::imap
