// Purpose:   The renames this process makes in a Maildir that no IMAP
//            session can see: a reader claiming a message moves new/X to
//            cur/X:2, (the Maildir rule; no flag changes, the message keeps
//            its UID). MaildirStore notes each one just before it renames;
//            MaildirWatch drops the two inotify events it causes instead of
//            waking every session in IDLE on the folder to rescan it for
//            nothing. (With 20 sessions on one folder, each delivery woke
//            all of them twice: once for the message, once for the first
//            session's claim of it.)
// Rules:     * Only our own claims, made under the folder's lock: no session
//              of this process lists the folder while one is under way, so
//              none can miss the message in between. A move by another
//              program still wakes everyone.
//            * An event is dropped only when its whole path was noted. Only
//              paths in watched directories are noted (the watch says which:
//              watching()), so each note meets its event soon; one that does
//              not is forgotten after kTtl, and at most kMaxNoted are kept:
//              a note not kept costs a wake-up, never a missed change.
// Trust:     paths are the server's own.
// Concurrency: thread-safe (the stores run on the blocking pool, the
//            watch on the event loop).
// Errors:    none.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

namespace hikyaku::imap {

class QuietMoves {
 public:
  static constexpr auto kTtl = std::chrono::seconds(10);
  static constexpr size_t kMaxNoted = 100'000;
  static constexpr size_t kPruneAt = 1'000;  // notes kept before old ones are looked for

  // The watch: `dir` is watched now (or no longer).
  void watching(const std::string& dir, bool watched);
  // Before renaming `from` to `to`.
  void note(const std::filesystem::path& from, const std::filesystem::path& to);
  // The rename did not happen.
  void cancel(const std::filesystem::path& from, const std::filesystem::path& to);
  // The watch saw `path` moved out or in: true (and forgotten) when it was
  // noted.
  bool consume(const std::string& path);

  size_t noted() const;  // for tests

 private:
  using Clock = std::chrono::steady_clock;
  mutable std::mutex mu_;
  std::multimap<std::string, Clock::time_point> paths_;
  std::map<std::string, unsigned> watched_;  // directory → watches of it
};

}  // namespace hikyaku::imap
