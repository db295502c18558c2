// Purpose:   One inotify instance for every IMAP session in IDLE: a session
//            subscribes to a Maildir folder's new/ and cur/ and is called
//            back when an entry is created, moved in or out, or deleted
//            there. Each directory is watched once however many sessions
//            wait on it. (A watcher per session ran into the kernel's limit
//            of 128 inotify instances per user: past it, sessions fell back
//            to polling the Maildir every 2 s.)
// Rules:     * A queue overflow (IN_Q_OVERFLOW) calls every subscriber: each
//              looks at its folder again, nothing is missed.
//            * A directory that goes away (IN_IGNORED) calls its subscribers;
//              their sessions find the folder gone.
//            * The two events of a claim noted in QuietMoves (a session of
//              this process moving new/X to cur/X:2,) call nobody.
//            * Without inotify (create() fails to get an instance, or a
//              directory cannot be watched) subscribe() says so and the
//              session polls, as before.
// Trust:     paths come from the server's own mailbox layout.
// Concurrency: single-threaded: create(), subscribe(), the callbacks and
//            the Subscription's destruction all on the io_context's thread.
//            A Subscription may outlive the watch (it then does nothing).
// Errors:    none thrown; failures are "not watched" (nullopt).
#pragma once

#include <sys/inotify.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "imap/quiet_moves.hpp"
#include "net/asio.hpp"

namespace hikyaku::imap {

class MaildirWatch {
 public:
  // The directories' entries, not their contents' bytes: deliveries (new/),
  // flag changes and expunges by others (cur/).
  static constexpr uint32_t kMask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE;

  // Null when the process has no inotify instance left. `quiet`: the claims
  // whose events wake nobody (QuietMoves); may be null.
  static std::shared_ptr<MaildirWatch> create(const boost::asio::any_io_executor& executor,
                                              std::shared_ptr<QuietMoves> quiet = nullptr);
  ~MaildirWatch();
  MaildirWatch(const MaildirWatch&) = delete;
  MaildirWatch& operator=(const MaildirWatch&) = delete;

  struct State;
  // Ends the subscription when destroyed (the directory's watch is removed
  // with its last subscriber).
  class Subscription {
   public:
    Subscription(std::weak_ptr<State> state, int wd, uint64_t id) : state_(std::move(state)), wd_(wd), id_(id) {}
    Subscription(Subscription&& o) noexcept : state_(std::move(o.state_)), wd_(o.wd_), id_(o.id_) { o.id_ = 0; }
    Subscription& operator=(Subscription&& o) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription();

   private:
    std::weak_ptr<State> state_;
    int wd_;
    uint64_t id_;  // 0: moved from
  };

  // `changed` is called on the io_context's thread after each batch of
  // events in `dir`; nullopt when the directory cannot be watched.
  std::optional<Subscription> subscribe(const std::filesystem::path& dir, std::function<void()> changed);

  // Directories watched now (for tests).
  size_t watched() const;

 private:
  explicit MaildirWatch(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace hikyaku::imap
