#include "imap/maildir_watch.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

namespace hikyaku::imap {

namespace asio = net::asio;

struct MaildirWatch::State : std::enable_shared_from_this<State> {
  State(asio::posix::stream_descriptor d, std::shared_ptr<QuietMoves> q) : fd(std::move(d)), quiet(std::move(q)) {}

  struct Watch {
    std::vector<std::string> dirs;  // the paths that led to it (one, unless a link)
    std::map<uint64_t, std::function<void()>> subscribers;
  };

  asio::posix::stream_descriptor fd;
  std::shared_ptr<QuietMoves> quiet;  // may be null
  std::map<int, Watch> watches;    // by watch descriptor
  std::map<std::string, int> by_dir;
  uint64_t next_id = 1;
  alignas(inotify_event) std::array<char, 16384> buf{};

  void read() {
    fd.async_read_some(asio::buffer(buf), [weak = weak_from_this()](const net::error_code& ec, size_t n) {
      auto self = weak.lock();
      if (!self || ec) return;  // the watch is gone, or closed
      self->dispatch(n);
      self->read();
    });
  }

  // Every subscriber of a directory that had events (everyone after an
  // overflow) is called once per batch. The callbacks are copied first: a
  // callback may end subscriptions.
  void dispatch(size_t n) {
    std::set<int> touched;
    std::set<int> gone;
    bool overflow = false;
    for (size_t off = 0; off + sizeof(inotify_event) <= n;) {
      inotify_event ev{};
      std::memcpy(&ev, buf.data() + off, sizeof ev);
      if ((ev.mask & IN_Q_OVERFLOW) != 0) overflow = true;
      else if (!quiet_move(ev, buf.data() + off + sizeof(inotify_event))) touched.insert(ev.wd);
      if ((ev.mask & IN_IGNORED) != 0) gone.insert(ev.wd);
      off += sizeof(inotify_event) + ev.len;
    }
    std::vector<std::function<void()>> calls;
    for (const auto& [wd, w] : watches) {
      if (!overflow && !touched.contains(wd)) continue;
      for (const auto& [id, f] : w.subscribers) calls.push_back(f);
    }
    // The kernel dropped these watches (the directory was removed).
    for (int wd : gone) forget(wd);
    for (auto& f : calls) f();
  }

  // Half of a claim a store noted (QuietMoves): wakes nobody.
  bool quiet_move(const inotify_event& ev, const char* name_field) {
    if (!quiet || (ev.mask & (IN_MOVED_FROM | IN_MOVED_TO)) == 0 || ev.len == 0) return false;
    auto it = watches.find(ev.wd);
    if (it == watches.end()) return false;
    const std::string name(name_field, ::strnlen(name_field, ev.len));
    for (const auto& d : it->second.dirs) {
      std::string path = d;
      path += '/';
      path += name;
      if (quiet->consume(path)) return true;
    }
    return false;
  }
  void forget(int wd) {
    auto it = watches.find(wd);
    if (it == watches.end()) return;
    for (const auto& d : it->second.dirs) {
      by_dir.erase(d);
      if (quiet) quiet->watching(d, false);
    }
    watches.erase(it);
  }

  void remove(int wd, uint64_t id) {
    auto it = watches.find(wd);
    if (it == watches.end() || it->second.subscribers.erase(id) == 0 || !it->second.subscribers.empty()) return;
    ::inotify_rm_watch(fd.native_handle(), wd);
    forget(wd);
  }
};

std::shared_ptr<MaildirWatch> MaildirWatch::create(const boost::asio::any_io_executor& executor,
                                                   std::shared_ptr<QuietMoves> quiet) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return nullptr;
  auto state = std::make_shared<State>(asio::posix::stream_descriptor(executor, fd), std::move(quiet));
  state->read();
  return std::shared_ptr<MaildirWatch>(new MaildirWatch(std::move(state)));
}

MaildirWatch::~MaildirWatch() {
  net::error_code ignored;
  state_->fd.close(ignored);  // its pending read ends; subscriptions left do nothing
  while (!state_->watches.empty()) state_->forget(state_->watches.begin()->first);
}

MaildirWatch::Subscription::~Subscription() {
  if (id_ == 0) return;
  if (auto state = state_.lock()) state->remove(wd_, id_);
}

MaildirWatch::Subscription& MaildirWatch::Subscription::operator=(Subscription&& o) noexcept {
  if (this == &o) return *this;
  if (id_ != 0) {
    if (auto state = state_.lock()) state->remove(wd_, id_);
  }
  state_ = std::move(o.state_);
  wd_ = o.wd_;
  id_ = std::exchange(o.id_, 0);
  return *this;
}

std::optional<MaildirWatch::Subscription> MaildirWatch::subscribe(const std::filesystem::path& dir,
                                                                   std::function<void()> changed) {
  if (!state_->fd.is_open()) return std::nullopt;
  const std::string key = dir.string();
  int wd = -1;
  if (auto it = state_->by_dir.find(key); it != state_->by_dir.end()) {
    wd = it->second;
  } else {
    wd = ::inotify_add_watch(state_->fd.native_handle(), key.c_str(), kMask);
    if (wd < 0) return std::nullopt;
    state_->watches[wd].dirs.push_back(key);  // a second path to the same directory shares its wd
    state_->by_dir[key] = wd;
    if (state_->quiet) state_->quiet->watching(key, true);
  }
  const uint64_t id = state_->next_id++;
  state_->watches[wd].subscribers.emplace(id, std::move(changed));
  return Subscription(state_, wd, id);
}

size_t MaildirWatch::watched() const { return state_->watches.size(); }

}  // namespace hikyaku::imap
