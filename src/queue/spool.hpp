// Purpose:   The durable mail queue: the single entry point for every message
//            that hikyaku accepts (Postfix cleanup + mail_queue_enter), and
//            the per-target delivery state that the scheduler records.
// Durability rules (STYLE R12; docs/queue.md has the file format):
//   1. enqueue() = stage() + commit(). stage() does no I/O: it picks the
//      id and describes the queue file; commit() writes envelope + delivery
//      plan + message into one file spool/tmp/<id>, fdatasync()s it, renames
//      it (RENAME_NOREPLACE) to spool/queue/<id> and fsync()s spool/queue/. Only after commit() returned may the
//      caller answer "250 2.0.0 Ok: queued as <id>". Concurrent commits
//      share directory fsyncs (group commit): a directory fsync that starts
//      after our rename covers us too. Between the two, the scheduler may
//      already attempt the message from memory (Scheduler::submit_staged:
//      "forward at once" overlaps the disk sync); its outcomes wait for the
//      commit, and a failed commit (the client gets 451 or 452 and retries) can
//      only make a duplicate, never a loss. A failed commit leaves nothing
//      in tmp/ or queue/ (a renamed file whose directory fsync failed is
//      unlinked again).
//   2. The message bytes are immutable once enqueued. State changes are
//      appended after them as checksummed one-line records, each
//      fdatasync()ed before record() returns (as Postfix marks recipients
//      done inside its queue file). No record exists at enqueue: "every
//      target pending, never attempted" is the state a record-less file
//      means, so enqueue needs no journal fsync.
//   3. A record holds the complete state of one target slot (target,
//      status, attempts, first/next attempt, last reply, fallback link).
//      The last valid record per slot wins, so replacing a target by its
//      next fallback link is one durable append (issue 3).
//   4. recover() deletes spool/tmp/* (never acknowledged: the client got no
//      250), ignores a torn or corrupt last record (its change was never
//      acknowledged either; the delivery is repeated: a duplicate, never a
//      loss) and moves unparseable queue files to spool/corrupt/.
//   5. A file is unlinked once every slot is final (delivered or failed).
//      The unlink needs no fsync: if it is lost, recovery finds all slots
//      final and unlinks again. The scheduler does not append the last
//      slot's final state: the unlink records it (a lost unlink repeats that
//      delivery: a duplicate, never a loss).
//   6. While commits fail, nothing starts before its commit. The spool
//      remembers whether its last commit failed; commit_in_doubt() says so,
//      and also when the file system has less room than the message needs
//      (statvfs, so that the first message on a full disk is caught before
//      its commit fails). While it is so, the scheduler starts no forward
//      of a new message before committed(): otherwise every retry of a
//      451/452'd message would reach the far side again. The first commit
//      that succeeds ends it, and forwards start at once again.
//   7. A message needs no queue file when every one of its targets was
//      reached while it was being written: a forward the far side took,
//      or a refused hidden forward whose copy is durable in its fallback
//      mailbox. commit() asks (its `finished`) before creating the file and
//      again before the flush; then nothing more is written or synced and
//      the client's 250 follows (the message is delivered, RFC 5321 §6.1).
//      The question never waits for a far side; it waits only for a
//      fallback copy being written, so that the two flushes do not compete
//      (Scheduler::finished_before_commit).
// Standards: RFC 5321 §4.5.4.1 (retry, give up), §6.1 (responsibility once
//            250 is sent), RFC 3463 (enhanced status in the last reply).
// Trust:     envelope strings and message bytes come from the network; they
//            are escaped in the header/records and stored verbatim in the
//            body. Queue ids are generated here and safe as file names;
//            ids given by operators are validated before touching files.
// Concurrency: every method is thread-safe. enqueue() calls run in parallel
//            (each has its own files); record() calls for one message must
//            not race with each other (the scheduler serialises per message).
// Errors:    Result/Status with errno text and the errno itself
//            (Error::error_number); nothing throws.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.hpp"
#include "base/result.hpp"
#include "base/file.hpp"
#include "mail/envelope.hpp"
#include "mail/message.hpp"
#include "policy/slot.hpp"
#include "queue/delivery_agent.hpp"

namespace hikyaku::queue {

using policy::Origin;
using policy::RecipientPlan;
using policy::SlotState;
using policy::SlotStatus;

// Everything the queue knows about one message.
struct SpooledMessage {
  std::string id;
  base::Clock::time_point arrival{};
  mail::Envelope envelope;
  std::filesystem::path path;    // spool/queue/<id>
  uint64_t message_offset = 0;   // message bytes are [offset, offset + size)
  uint64_t message_size = 0;
  std::vector<SlotState> slots;  // slot index = position
  Origin origin = Origin::received;  // header fact "origin" (absent: received)
  unsigned torn_records = 0;     // invalid records ignored while loading

  bool done() const;
};

// A short summary for `hikyaku queue list`.
struct QueueEntry {
  std::string id;
  base::Clock::time_point arrival{};
  std::string sender;
  uint64_t size = 0;
  unsigned pending = 0;  // slots not yet final
  unsigned total = 0;
};

// How a commit that succeeded ended (rule 7).
enum class Committed {
  queued,    // spool/queue/<id> is durable
  finished,  // every target was reached before the flush: no queue file
};

// A message accepted for the spool and not yet durable (rule 1). Move-only;
// destroying it after a failed commit() deletes the tmp file.
class StagedMessage {
 public:
  StagedMessage() = default;
  StagedMessage(StagedMessage&& other) noexcept { *this = std::move(other); }
  StagedMessage& operator=(StagedMessage&& other) noexcept;
  StagedMessage(const StagedMessage&) = delete;
  StagedMessage& operator=(const StagedMessage&) = delete;
  ~StagedMessage();

  // What Spool::load() will read back after the commit: path is
  // spool/queue/<id>, every slot pending, no records.
  SpooledMessage message;

 private:
  friend class Spool;
  void discard();
  int fd_ = -1;
  std::filesystem::path tmp_;  // set once commit() created it
  std::string header_;
  bool committed_ = false;
};

class Spool {
 public:
  // `dir` is DATA_DIR/spool. `sync` false skips every fsync (tests and
  // benchmarks of the rest only).
  Spool(std::filesystem::path dir, base::Clock& clock, bool sync = true);

  // mkdir -p spool/{tmp,queue,corrupt}, once at start (open() is the same;
  // Scheduler::start() → recover() calls it too).
  base::Status create() const;
  base::Status open() const { return create(); }

  // Rule 1. `message` is the complete message as received (CRLF, dot
  // unstuffed, including our Received header). Fails without side effects
  // when a recipient has no target or the disk refuses.
  base::Result<std::string> enqueue(const mail::Envelope& envelope, const std::vector<RecipientPlan>& plan,
                                    std::string_view message, Origin origin = Origin::received);
  // Rule 1 in two steps. stage() has the same checks as enqueue() and no
  // I/O; commit() writes the file and makes it durable under
  // spool/queue/<id> (`message`: the same bytes given to stage(); an id
  // already taken there fails the commit, the caller answers 451). A failed
  // commit leaves nothing behind (a crash inside it may leave a queue file
  // that recovery delivers: a duplicate of the client's retry). Its Error
  // carries the errno (Error::out_of_space(): the caller answers 452).
  // A large message's body may be in a file (mail::Message): the commit
  // copies it into the queue file inside the kernel (copy_file_range).
  base::Result<StagedMessage> stage(const mail::Envelope& envelope, const std::vector<RecipientPlan>& plan,
                                    const mail::Message& message, Origin origin = Origin::received);
  // `finished` (may be empty) is asked before the file is created and
  // again before its flush: true means every target of the message was
  // reached while it was being written (Scheduler::finished_before_commit),
  // so it needs no queue file: nothing more is written or flushed, the tmp
  // file (if made) is unlinked, and the commit says Committed::finished.
  base::Result<Committed> commit(StagedMessage& staged, const mail::Message& message,
                                 const std::function<bool()>& finished = {});
  // A file without a name in spool/tmp, for a large message's body while
  // it arrives (the same file system as the queue: the commit's copy stays
  // inside it). It disappears with its last descriptor, and after a crash.
  base::Result<base::UniqueFd> body_file() const;
  // Rule 6: true while the last commit failed, or when the spool's file
  // system has fewer than `bytes` free (a full disk seen before a commit
  // fails on it). One statvfs; its own failure counts as doubt.
  bool commit_in_doubt(uint64_t bytes) const;

  // Rule 4: clean spool/tmp, quarantine corrupt files, return the ids of all
  // queued messages, oldest first.
  base::Result<std::vector<std::string>> recover();

  // Read the header and all valid records of a queued message.
  base::Result<SpooledMessage> load(std::string_view id) const;
  // The message bytes: whole in memory, or for a large one its header
  // section in memory and the body left in the file (mail::read_message).
  base::Result<mail::Message> read_message(const SpooledMessage& message) const;

  // Rule 2/3: append the new state of slot `index`, fdatasync.
  base::Status record(const SpooledMessage& message, size_t index, const SlotState& state);

  // Rule 5 (also `hikyaku queue delete ID`): unlink the file.
  base::Status remove(std::string_view id);

  // Move an unreadable queue file to spool/corrupt/ for the operator.
  base::Status quarantine(std::string_view id);

  // `hikyaku queue list`: all queued messages, oldest first.
  base::Result<std::vector<QueueEntry>> list() const;

  const std::filesystem::path& dir() const { return dir_; }
  // Ids are [0-9a-z] only, fixed width, sortable by arrival.
  static bool valid_id(std::string_view id);

 private:
  std::string next_id();
  base::Result<Committed> write_and_rename(StagedMessage& staged, const mail::Message& message,
                                           const std::function<bool()>& finished);  // commit() itself
  base::Status sync_queue_directory();

  std::filesystem::path dir_;
  base::Clock& clock_;
  bool sync_;
  std::atomic<uint32_t> counter_{0};
  std::atomic<bool> last_commit_failed_{false};  // rule 6
  // Group commit of the queue directory fsync (rule 1).
  std::mutex dir_sync_mu_;
  std::atomic<uint64_t> renames_{0};
  uint64_t synced_ = 0;  // guarded by dir_sync_mu_
};

}  // namespace hikyaku::queue
