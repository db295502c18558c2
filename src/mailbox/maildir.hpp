// Purpose:   One Maildir (DATA_DIR/mailboxes/NAME/{tmp,new,cur}), shared by
//            local delivery, POP3 and IMAP. Delivery writes tmp/ →
//            fdatasync → links into new/ → unlinks tmp → fsync new/ (the
//            Maildir convention: a message is visible only once it is
//            durable; readable by mutt and Dovecot unchanged). Readers list
//            new/ and cur/; a message's unique id is its file name up to ':'
//            — stable across sessions and restarts, so it serves as the POP3
//            UIDL (RFC 1939 §7).
// Line endings (decision): files on disk use LF line endings, as every
//            Maildir reader (mutt, Dovecot, getmail) expects. deliver()
//            converts CRLF → LF (a lone CR is kept). Readers that speak a
//            network protocol (POP3, IMAP) convert LF → CRLF on output with
//            to_network(); MessageInfo::size is the size in that CRLF form
//            (what RFC 1939 LIST/STAT count), MessageInfo::disk_size the
//            bytes on disk. Both sizes are also in the file name as Dovecot's
//            ",S=<disk>,W=<crlf>" so list() needs no read.
// Names:     <secs>.M<usecs>P<pid>Q<counter>.<host>,S=<n>,W=<n>[:2,FLAGS],
//            host sanitised ('/' → \057, ':' → \072, as the convention says)
//            and cut to 24 chars so a uid stays ≤ 70 chars (RFC 1939 §7).
// Standards: Maildir (cr.yp.to/proto/maildir.html), RFC 1939 §7 (UIDL
//            1–70 chars 0x21–0x7E), RFC 5322 §2.3 (CRLF in transport).
// Trust:     names are generated here; message bytes are untrusted and stored
//            as they are (only line endings change). Names of files dropped
//            in by other programs are only parsed, never used as paths
//            outside the Maildir.
// Concurrency: every method is safe from several threads and processes: a
//            message moved new/ → cur/ or removed by another reader is looked
//            up again by uid (read) or treated as already gone (remove).
// Errors:    Result/Status with errno text; nothing throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/file.hpp"
#include "base/result.hpp"

namespace hikyaku::mailbox {

struct MessageInfo {
  std::string uid;              // base file name before ":2,"
  std::string path;             // current full path (new/ or cur/); a string, not a
                                // std::filesystem::path, which keeps a list of its
                                // components: ~500 bytes a message in an IMAP view
  uint64_t size = 0;            // size with CRLF line endings (POP3/IMAP form, RFC 1939)
  bool in_new = false;
  std::string flags;            // Maildir info flags after ":2," ("S", "RS", ...)
  uint64_t disk_size = 0;       // bytes on disk (LF line endings)
  int64_t first_seen = 0;       // a reader's own note, carried over by list(known):
                                // IMAP's internal date (the file's mtime when first
                                // seen; RFC 3501 §2.3.3); 0 until a reader sets it
};

class Maildir {
 public:
  explicit Maildir(const std::filesystem::path& root, bool sync = true);
  std::filesystem::path root() const { return root_; }
  // The Maildir++ folder ROOT/DIR_NAME (".Sent", ".a.b"): its messages
  // count towards this Maildir's quota (the maildirsize at the top).
  Maildir folder(std::string_view dir_name) const;
  // Where the quota is kept: the root, or the top Maildir of a folder.
  std::filesystem::path quota_root() const { return quota_root_.empty() ? root_ : quota_root_; }

  // mkdir -p root/{tmp,new,cur}.
  base::Status create() const;
  // The Maildir convention's cleanup: an entry of tmp/ (here and in each
  // Maildir++ folder) untouched for `age` was left by a writer that died
  // (a delivery killed before its link into new/, an IMAP APPEND's scratch
  // directory); it is removed. Returns how many were.
  static constexpr std::chrono::hours kStaleTmpAge{36};
  // Each Maildir++ folder under `root` (".Sent", ".Archive.2026": a
  // directory whose name starts with a dot), given to `f`; the first error
  // `f` returns, or the listing's (its errno in error_number), ends the walk.
  static base::Status for_each_folder(const std::filesystem::path& root,
                                      const std::function<base::Status(const std::filesystem::path&)>& f);
  base::Result<size_t> remove_stale_tmp(std::chrono::system_clock::time_point now,
                                        std::chrono::seconds age = kStaleTmpAge) const;
  // A file created ahead in tmp/ (empty, under a name of its own) for a
  // later stage(). Creating the file is the costly step of a delivery on
  // ext4 (its search for a free inode passes every inode freed in the last
  // minute), and a spare takes it off the path of a delivery that someone
  // waits for (a refused forward's fallback copy). Move-only; removed by its
  // destructor unless a stage() took it; an unused one is swept with tmp/
  // (remove_stale_tmp) after a crash.
  class Spare {
   public:
    Spare() = default;
    Spare(Spare&& other) noexcept { *this = std::move(other); }
    Spare& operator=(Spare&& other) noexcept;
    Spare(const Spare&) = delete;
    Spare& operator=(const Spare&) = delete;
    ~Spare();
    bool ready() const { return fd_ >= 0; }
    std::chrono::steady_clock::time_point made() const { return made_; }

   private:
    friend class Maildir;
    void remove();  // close and unlink, if ready
    int fd_ = -1;
    std::string path_;  // ROOT/tmp/NAME
    std::chrono::steady_clock::time_point made_{};
  };
  base::Result<Spare> make_spare() const;
  // Store a message in new/, durably by the time it returns; returns its
  // unique id. Readers see it only once its bytes are flushed; on any
  // failure nothing of it is left in tmp/ or new/.
  // `message` may use CRLF (as received by SMTP) or LF; it is stored with LF.
  base::Result<std::string> deliver(std::string_view message) const;
  // The same for a message in parts (headers added at delivery, then the
  // spooled bytes), converted and written in bounded chunks: no copy of
  // the whole message is made.
  base::Result<std::string> deliver(std::span<const std::string_view> parts) const;
  // The same for a message read in pieces (a large one's body from its
  // file): `pieces(emit)` hands every piece, in order, to `emit`; it is
  // called twice (the sizes in the name, then the write), and its error
  // ends the delivery with nothing left behind.
  using Pieces = std::function<base::Status(const std::function<void(std::string_view)>& emit)>;
  // With a ready `spare` (of this Maildir) the message is written into it.
  base::Result<std::string> deliver(const Pieces& pieces, Spare* spare = nullptr) const;
  // deliver() in two steps, for a batch that must appear whole (IMAP
  // MULTIAPPEND). stage() writes a message in tmp/ and flushes it: no
  // reader sees it. publish() links staged messages into new/ (no
  // cur_flags), or into cur/ with cur_flags[i] for staged[i], and flushes
  // that directory once; on a failure it takes back every one it linked,
  // so readers see all or none. Either way it removes the staged files.
  // discard() removes staged files that are not to be published.
  struct Staged {
    std::string uid;       // the unique name, with its S= and W= sizes
    std::string tmp_path;  // ROOT/tmp/UID, or a Spare's name there
    uint64_t stored_size = 0;
    uint64_t wire_size = 0;
  };
  base::Result<Staged> stage(std::string_view message) const;
  base::Result<Staged> stage(const Pieces& pieces, Spare* spare = nullptr) const;
  base::Result<std::vector<MessageInfo>> publish(std::span<const Staged> staged,
                                                 std::span<const std::string> cur_flags = {}) const;
  void discard(std::span<const Staged> staged) const;
  // All messages in new/ and cur/, oldest first (by delivery time in name).
  // The sizes of messages found (by uid) in `known` are taken from there: a
  // message's bytes never change in a Maildir, only its name's flags, and a
  // name without S= and W= (another delivery agent's) costs a read of the
  // whole message to size it.
  // One read of each directory (readdir, no stat unless the file system
  // does not tell a file's type): a folder of 10,000 messages is listed at
  // every full IMAP scan. Other programs' files: one that cannot be read is
  // listed with its size on disk (only reading it fails); of two files with
  // one unique name, the one `known` does not have there is given a fresh
  // name (renamed, with its flags), so each is a message of its own, and so
  // is a file whose unique name is empty or has white space or control
  // characters (no uidlist line or POP3 UIDL could hold it), or too long
  // to take its flags within NAME_MAX. Call it
  // under the caller's lock on the mailbox (IMAP's scan, POP3's maildrop).
  using Known = std::unordered_map<std::string, MessageInfo>;  // uid → what a reader kept
  base::Result<std::vector<MessageInfo>> list(const Known* known = nullptr) const;
  // The bytes on disk (LF line endings); see to_network() for POP3/IMAP.
  // Follows a message another reader renamed; an error with error_number
  // ENOENT when it has gone.
  base::Result<std::string> read(const MessageInfo& message) const;
  base::Status remove(const MessageInfo& message) const;

  // Additions beyond the first interface.
  // Set the info flags (sorted, deduplicated ASCII letters, e.g. "S", "RS")
  // and move the message to cur/ (the Maildir rule: a message seen by a
  // reader leaves new/). Updates `message` in place. Never replaces a file
  // already under the new name (another program's with the same unique
  // name): EEXIST, and both stay.
  base::Status set_flags(MessageInfo& message, std::string_view flags) const;
  // The lock under which a reader changes a message's name (its flags) by
  // read-modify-write, and IMAP numbers the folder (imap/maildir_store.hpp):
  // flock(2) on MAILDIR/hikyaku-uidlist.lock, held while the descriptor
  // lives. Blocks until it is free.
  base::Result<base::UniqueFd> lock_names() const;
  // Add `flag` to the flags the message has now, not to those it was listed
  // with (another reader may have renamed it since): under lock_names(), so
  // no other reader's change is undone. Updates `message` in place; an
  // error with error_number ENOENT when it has gone.
  base::Status add_flag(MessageInfo& message, char flag) const;
  // Where set_flags(message, flags) puts the message.
  std::filesystem::path path_with_flags(const MessageInfo& message, std::string_view flags) const;
  // Where the message `seen` (or, when null, the one named `uid`) is now:
  // at the path it was seen at if still there, else found by a listing of
  // new/ and cur/ (find(); about 20 ms in a 10,000-message folder, which a
  // STORE of one message should not pay). ENOENT when it has gone.
  base::Result<MessageInfo> where_now(const MessageInfo* seen, std::string_view uid) const;
  // Find a message by uid in new/ or cur/ (after another reader moved it);
  // an error with error_number ENOENT when it is in neither.
  base::Result<MessageInfo> find(std::string_view uid) const;

  // LF → CRLF for network output (a CRLF already present is kept).
  static std::string to_network(std::string_view stored);
  // CRLF → LF for storage.
  static std::string to_stored(std::string_view network);
  // The size to_network() would produce, without building it.
  static uint64_t network_size(std::string_view stored);
  // The size to_stored() would produce (the bytes on disk), likewise.
  static uint64_t stored_size(std::string_view network);
  // The size on disk a file name states (",S=<n>" before the info part, as
  // deliver() and Dovecot write it); nullopt when it states none.
  static std::optional<uint64_t> disk_size_in_name(std::string_view file_name);

 private:
  // ROOT/SUB ("tmp", "new", "cur").
  std::filesystem::path sub(std::string_view name) const;

  // Strings: every IMAP session keeps a few Maildirs (issue 15 item 4).
  std::string root_;
  std::string quota_root_;  // empty: the root (a Maildir that is not a folder)
  bool sync_;
};

}  // namespace hikyaku::mailbox
