// The only IMAP file that includes Asio (DESIGN.md: one Asio TU ≈ 30 s).
#include "imap/session.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "base/log.hpp"
#include "base/strings.hpp"
#include "config/config.hpp"
#include "imap/protocol/compression.hpp"
#include "imap/protocol/engine.hpp"
#include "imap/protocol/framer.hpp"
#include "login/mailbox_login.hpp"
#include "mailbox/maildir.hpp"
#include "net/stream.hpp"

namespace hikyaku::imap {
namespace {

namespace asio = net::asio;
using protocol::Action;
using protocol::Framer;
using protocol::LoginOutcome;

// Without inotify, IDLE looks at the Maildir this often; with it, this is
// only a safety net (e.g. a Maildir on NFS, where inotify sees nothing).
constexpr std::chrono::seconds kIdlePollFallback{2};
constexpr std::chrono::seconds kIdlePollSafety{30};
// IMAP command lines carry long sequence sets and ID parameters (RFC 2971:
// 30 pairs of up to 1024 octets); RFC 7162 §4 asks servers to accept at
// least 8192 octets; Dovecot's default is 64 KiB. limits.line_length applies
// when larger.
constexpr size_t kMaxCommandLine = 65536;
// A literal before login is a user name or a password (LOGIN {n}).
constexpr uint64_t kMaxLiteralBeforeLogin = 16384;

// The reply buffer kept between replies; a larger one is freed once sent.
constexpr size_t kKeepReplyBuffer = 16384;

// State shared between the IDLE loop and the handlers it leaves pending:
// the socket's readiness wait and the folder watch's callback, which may
// run after the loop has ended (they only touch this). All on the
// session's executor.
struct IdleState {
  explicit IdleState(const asio::any_io_executor& ex) : wake(ex) {}
  asio::steady_timer wake;  // the loop sleeps on it; the handlers cancel it
  bool waiting_for_input = false;  // a readiness wait is pending
  bool input_ready = false;
  bool changed = false;
};

class Session {
 public:
  Session(ImapContext& ctx, net::Stream& stream, const net::ConnectionLimiter::Lease& lease)
      : ctx_(ctx),
        stream_(stream),
        lease_(lease),
        log_(base::logger("imapd")),
        id_(stream.remote_ip() + ":" + std::to_string(stream.remote_port())),
        timeout_(ctx.settings.idle_timeout),
        framer_(std::max<size_t>(ctx.settings.line_length, kMaxCommandLine), ctx.settings.message_size) {}

  net::awaitable<void> run(bool implicit_tls);
  // The connection's one log line at its end (a client that never logged
  // in included): who, whether TLS was on, and how it ended.
  void log_end() const {
    log_->info("{} disconnect from [{}] user={} tls={}", id_, stream_.remote_ip(), mailbox_.empty() ? std::string("-") : mailbox_,
               stream_.tls_active() ? "yes" : "no");
  }

 private:
  // The autologout timer, [limits] stress_timeout while the pool is nearly full.
  std::chrono::seconds timeout() const {
    return lease_.under_stress() ? std::min(timeout_, ctx_.settings.stress_timeout) : timeout_;
  }
  // The TLS handshake on 993 and the greeting; false: the connection ends.
  net::awaitable<bool> open(bool implicit_tls);
  // One command (or one read, or one continuation): what run() does next.
  enum class Turn { next, idle, end };
  net::awaitable<Turn> turn(std::optional<std::string>& idle_line);
  net::awaitable<bool> flush();
  // The autologout: BYE, then the log line (`where`: " in IDLE" or "").
  net::awaitable<void> autologout(std::string_view where);
  // Every byte to and from the client goes through these two: after
  // COMPRESS DEFLATE (RFC 4978) they compress and decompress.
  net::awaitable<bool> send(std::string_view data);
  // Some bytes of input (at least one) appended to `out`, by `deadline`;
  // false on EOF, error, timeout or corrupt compressed input.
  net::awaitable<bool> read_input(std::string& out, std::chrono::steady_clock::time_point deadline);
  // read_input without the wait: input that is here now appended to `out`
  // (true), or the readiness to wait for in `need` (true, nothing
  // appended), or false at the end (EOF, error, corrupt compressed input).
  bool take_input(std::string& out, net::TlsChannel::Need& need);
  // These two replace `action` in place: an Action returned by value would
  // be one more temporary in Session::run's frame, which an idle
  // connection keeps (issue 15 item 4).
  net::awaitable<void> authenticate(Action& action);
  net::awaitable<void> on_blocking_pool(Action& action, const std::function<Action()>& f);
  // IDLE: report changes until a complete line is framed; nullopt when the
  // connection ended or timed out.
  net::awaitable<std::optional<std::string>> idle_until_input();
  // The folder watch of an IDLE (both empty without inotify).
  struct IdleWatch {
    std::optional<MaildirWatch::Subscription> new_dir;
    std::optional<MaildirWatch::Subscription> cur_dir;
  };
  IdleWatch watch_selected_folder(const std::shared_ptr<IdleState>& state) const;
  // One step of IDLE's reading: take the input that is here (when `read`)
  // and frame it. `line`: a complete line (set in `line`); `more`: input is
  // here, step again; `wait`: a readiness wait is pending; `ended`: EOF,
  // error or corrupt compressed input.
  enum class IdleInput { line, more, wait, ended };
  IdleInput take_idle_input(const std::shared_ptr<IdleState>& state, bool read, std::optional<std::string>& line);

  ImapContext& ctx_;
  net::Stream& stream_;
  const net::ConnectionLimiter::Lease& lease_;
  std::shared_ptr<spdlog::logger> log_;
  std::string id_;
  std::chrono::seconds timeout_;
  net::ProgressDeadline deadline_;  // for the command (or IDLE's DONE) being read
  Framer framer_;
  std::optional<protocol::Engine> engine_;
  std::string out_;
  std::string mailbox_;  // the login's [[mailbox]] name once authenticated
  std::optional<protocol::Deflate> compression_;  // after COMPRESS DEFLATE
};

net::awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  bool ok = co_await send(out_);
  // A large reply (a FETCH of many messages) leaves a large buffer: give it
  // back rather than keep it for the life of the connection.
  if (out_.capacity() > kKeepReplyBuffer) std::string().swap(out_);
  else out_.clear();
  if (!ok && stream_.timed_out()) log_->info("{} write timeout: the client stopped reading", id_);
  co_return ok;
}

net::awaitable<bool> Session::send(std::string_view data) {
  if (!compression_) {
    bool ok = co_await stream_.write(data, timeout());
    co_return ok;
  }
  auto packed = compression_->compress(data);
  if (!packed) co_return false;
  const std::string_view view = *packed;
  bool ok = co_await stream_.write(view, timeout());
  co_return ok;
}

net::awaitable<bool> Session::read_input(std::string& out, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto need = net::TlsChannel::Need::nothing;
    if (!take_input(out, need)) co_return false;
    if (need == net::TlsChannel::Need::nothing) {
      // Input was there without waiting (what the decompressor still holds,
      // or a socket that keeps up): the loop's other work runs before it is
      // framed, so that one client's flood cannot stall every connection
      // (a DEFLATE bomb inflates gigabytes from a few megabytes).
      auto executor = co_await asio::this_coro::executor;
      co_await asio::post(executor, net::use_awaitable);
      co_return true;
    }
    const bool ready = co_await stream_.wait(need, deadline);
    if (!ready) co_return false;
  }
}

bool Session::take_input(std::string& out, net::TlsChannel::Need& need) {
  need = net::TlsChannel::Need::nothing;
  if (!compression_) {
    const auto attempt = stream_.try_read(out);
    need = attempt.need;
    return !attempt.error;
  }
  // Decompressed in steps of 64 KiB: a small input that inflates hugely is
  // framed (and refused by the framer's limits) piece by piece.
  constexpr size_t kStep = 64 * 1024;
  for (;;) {
    if (compression_->pending()) {
      auto plain = compression_->decompress(kStep);
      if (!plain) {
        log_->info("{} COMPRESS: {}", id_, plain.error().message);
        return false;
      }
      if (!plain->empty()) {
        out += *plain;
        return true;
      }
      // Nothing came out of what we have: only more input helps.
    }
    std::string raw;
    const auto attempt = stream_.try_read(raw);
    if (attempt.error) return false;
    if (attempt.need != net::TlsChannel::Need::nothing) {
      need = attempt.need;
      return true;
    }
    compression_->feed(raw);
  }
}

net::awaitable<void> Session::on_blocking_pool(Action& action, const std::function<Action()>& f) {
  auto task = [&]() -> net::awaitable<void> {
    action = f();
    co_return;
  };
  co_await asio::co_spawn(ctx_.blocking, task, net::use_awaitable);
}

net::awaitable<void> Session::run(bool implicit_tls) {
  // This frame and idle_until_input()'s are what a connection keeps while
  // it idles (issue 15): the work of a command lives in turn(), whose frame
  // is gone by then.
  const bool opened = co_await open(implicit_tls);
  if (!opened) co_return;
  std::optional<std::string> idle_line;  // the line that ended an IDLE
  for (;;) {
    const Turn next = co_await turn(idle_line);
    if (next == Turn::end) co_return;
    if (next == Turn::idle) {
      idle_line = co_await idle_until_input();
      if (!idle_line) co_return;
    }
  }
}

net::awaitable<bool> Session::open(bool implicit_tls) {
  log_->info("{} connect from [{}]:{} (imap{})", id_, stream_.remote_ip(), stream_.remote_port(),
             implicit_tls ? "s" : "");
  // RFC 8314 §3.3: on 993 the TLS handshake comes before any IMAP byte.
  if (implicit_tls) {
    bool ok = co_await stream_.start_tls(std::chrono::seconds(60));
    if (!ok) {
      log_->debug("{} TLS handshake failed on imaps", id_);
      co_return false;
    }
  }
  protocol::Options options;
  options.tls_available = ctx_.tls != nullptr;
  options.tls_active = stream_.tls_active();
  options.allow_plaintext = ctx_.settings.allow_plaintext;  // the POP3 rule
  options.max_errors = std::max(1u, ctx_.settings.max_errors);
  options.max_message_size = ctx_.settings.message_size;  // as an APPEND literal (the framer's limit)
  engine_.emplace(options);
  out_ = engine_->greeting();
  bool flushed1 = co_await flush();  // not inside the condition (GCC 12, docs/STYLE.md)
  co_return flushed1;
}

net::awaitable<Session::Turn> Session::turn(std::optional<std::string>& idle_line) {
  auto& engine = *engine_;
  std::string text;
  Framer::Status status;
  if (idle_line) {
    text = std::move(*idle_line);
    idle_line.reset();
    status = Framer::Status::command;
  } else {
    // Before login a literal can only be a user name or a password: a
    // client that has not logged in cannot make the server hold a
    // message-sized command.
    framer_.set_max_literal(engine.state() == protocol::State::not_authenticated ? kMaxLiteralBeforeLogin
                                                                                : ctx_.settings.message_size);
    status = framer_.next(text);
  }
  Action action;
  switch (status) {
    case Framer::Status::need_more: {
      // A command begun and not finished (a literal, a line in pieces):
      // what comes now is acknowledged at once (net::Stream::acknowledge_now).
      const bool partial = framer_.in_command();
      std::string data;
      deadline_.start(timeout());
      bool ok = co_await read_input(data, deadline_.at());
      if (!ok) {
        if (stream_.timed_out()) {
          co_await autologout("");
        } else {
          log_->debug("{} connection closed by peer", id_);
        }
        co_return Turn::end;
      }
      deadline_.progress(data, timeout());
      if (partial) stream_.acknowledge_now();
      framer_.append(data);
      co_return Turn::next;
    }
    case Framer::Status::continuation: {
      // RFC 3501 §7.5: the client may send the literal now.
      out_ += protocol::Engine::continuation();
      bool flushed2 = co_await flush();  // not inside the condition (GCC 12, docs/STYLE.md)
      co_return flushed2 ? Turn::next : Turn::end;
    }
    case Framer::Status::too_long:
    case Framer::Status::too_large:
      deadline_.reset();
      action = engine.on_framing_error(status, text);
      break;
    case Framer::Status::command: {
      deadline_.reset();  // the next command's time starts when we wait for it
      std::function<Action()> step = [&] { return engine.on_input(text); };
      co_await on_blocking_pool(action, step);
      break;
    }
  }

  // Carry out the engine's requests until it only wants to talk.
  while (action.kind == Action::Kind::authenticate) {
    co_await authenticate(action);
  }
  // A [SERVERBUG] reply's cause, for the operator (the client gets no path).
  const auto note_problem = [&] {
    if (!action.problem.empty()) log_->warn("{} user={}: {}", id_, mailbox_.empty() ? "-" : mailbox_, action.problem);
  };
  note_problem();
  out_ += action.reply;
  // A long FETCH comes in parts: each written before the next is made, so
  // a client that does not read holds up one part, not the whole answer.
  while (action.kind == Action::Kind::more) {
    bool sent = co_await flush();  // not inside the condition (GCC 12, docs/STYLE.md)
    if (!sent) co_return Turn::end;
    std::function<Action()> next = [&] { return engine.resume(); };
    co_await on_blocking_pool(action, next);
    note_problem();
    out_ += action.reply;
  }
  if (action.kind == Action::Kind::close) {
    co_await flush();
    log_->debug("{} session ended", id_);
    co_return Turn::end;
  }
  if (action.kind == Action::Kind::start_tls) {
    bool flushed3 = co_await flush();  // not inside the condition (GCC 12, docs/STYLE.md)
    if (!flushed3) co_return Turn::end;
    framer_.clear();  // RFC 3501 §6.2.1 / RFC 2595 §3.1: no plaintext injection
    bool ok = co_await stream_.start_tls(std::chrono::seconds(60));
    if (!ok) {
      log_->info("{} STARTTLS handshake failed", id_);
      co_return Turn::end;
    }
    engine.tls_started();
    log_->debug("{} STARTTLS: {}", id_, stream_.tls_description());
    co_return Turn::next;
  }
  if (action.kind == Action::Kind::compress) {
    bool flushed5 = co_await flush();  // the OK itself is not compressed (RFC 4978 §3)
    if (!flushed5) co_return Turn::end;
    framer_.clear();  // the client waits for the OK before it compresses
    compression_.emplace();
    log_->debug("{} COMPRESS DEFLATE active", id_);
    co_return Turn::next;
  }
  if (action.kind == Action::Kind::idle) {
    bool flushed4 = co_await flush();  // not inside the condition (GCC 12, docs/STYLE.md)
    co_return flushed4 ? Turn::idle : Turn::end;
  }
  // Pipelined commands are answered in one write.
  if (framer_.empty() || out_.size() > 65536) {
    bool flushed5 = co_await flush();  // not inside the condition (GCC 12, docs/STYLE.md)
    if (!flushed5) co_return Turn::end;
  }
  co_return Turn::next;
}

net::awaitable<void> Session::autologout(std::string_view where) {
  // RFC 3501 §5.4: the server's autologout timer ended the connection.
  out_ += "* BYE autologout; idle for too long\r\n";
  co_await flush();
  log_->info("{} idle timeout{}{}", id_, where, mailbox_.empty() ? "" : " user=" + mailbox_);
}

net::awaitable<void> Session::authenticate(Action& a) {
  auto& engine = *engine_;
  const login::LoginSession session{*log_, id_, stream_.remote_ip(), stream_.tls_active(),
                                      metrics::Protocol::imap};
  login::LoginAttempt attempt{std::move(a.user), std::move(a.password), a.mechanism, a.refused};
  base::wipe(a.password);
  const login::LoginResult result = co_await ctx_.logins.check(session, std::move(attempt));
  const std::optional<std::string>& mailbox = result.mailbox;
  if (!mailbox) {
    a = engine.login_result(result.busy ? LoginOutcome::unavailable : LoginOutcome::bad_credentials);
    co_return;
  }

  // Open the account: the login's Maildir (created on first use) and its
  // special-use folders.
  mailbox::Maildir maildir(ctx_.settings.mailboxes_dir / *mailbox);
  auto account = std::make_unique<MaildirAccount>(maildir, ctx_.locks, ctx_.logins.quota_of(*mailbox), ctx_.quiet_moves);
  auto open = [&]() -> net::awaitable<std::string> {
    auto st = maildir.create();
    if (st) st = account->create_special_folders();
    co_return st ? std::string() : st.error().message;
  };
  std::string problem = co_await asio::co_spawn(ctx_.blocking, open, net::use_awaitable);
  if (!problem.empty()) {
    log_->error("{} login: user={} mailbox unavailable: {}", id_, *mailbox, problem);
    a = engine.login_result(LoginOutcome::unavailable);
    co_return;
  }
  log_->info("{} login: user={} mechanism={} tls={}", id_, *mailbox, a.mechanism,
             stream_.tls_active() ? stream_.tls_description() : "no");
  mailbox_ = *mailbox;
  a = engine.login_result(LoginOutcome::ok, std::move(account));
}

Session::IdleWatch Session::watch_selected_folder(const std::shared_ptr<IdleState>& state) const {
  // Watch new/ (deliveries) and cur/ (flag changes, expunges by others) of
  // the selected folder (IDLE before SELECT watches INBOX), through the
  // server's one inotify instance; the subscriptions end with the IDLE.
  IdleWatch w;
  if (!ctx_.watch) return w;
  const auto root = MaildirAccount::directory_of(ctx_.settings.mailboxes_dir / mailbox_,
                                                 engine_->selected().empty() ? "INBOX" : engine_->selected());
  auto changed = [state] {
    state->changed = true;
    state->wake.cancel();
  };
  w.new_dir = ctx_.watch->subscribe(root / "new", changed);
  w.cur_dir = ctx_.watch->subscribe(root / "cur", changed);
  return w;
}

Session::IdleInput Session::take_idle_input(const std::shared_ptr<IdleState>& state, bool read,
                                            std::optional<std::string>& line) {
  if (read) {
    // Take what input is here; frame it.
    std::string data;
    auto need = net::TlsChannel::Need::nothing;
    if (!take_input(data, need)) return IdleInput::ended;
    if (need == net::TlsChannel::Need::nothing) {
      deadline_.progress(data, timeout());
      framer_.append(data);
    } else if (!state->waiting_for_input) {
      state->waiting_for_input = true;
      const auto what =
          need == net::TlsChannel::Need::writable ? net::tcp::socket::wait_write : net::tcp::socket::wait_read;
      stream_.socket().async_wait(what, [state](const net::error_code&) {
        state->waiting_for_input = false;
        state->input_ready = true;  // on an error too: the next read reports it
        state->wake.cancel();
      });
    }
  }
  std::string text;
  const auto st = framer_.next(text);
  if (st == Framer::Status::command) {
    line = std::move(text);
    return IdleInput::line;
  }
  if (st != Framer::Status::need_more) {
    line = "";  // not DONE: the engine answers BAD
    return IdleInput::line;
  }
  return state->waiting_for_input ? IdleInput::wait : IdleInput::more;
}

net::awaitable<std::optional<std::string>> Session::idle_until_input() {
  // What stays in this coroutine's frame lives as long as the IDLE (all day
  // on a phone, issue 15): the reading and framing are plain functions.
  auto state = std::make_shared<IdleState>(stream_.socket().get_executor());
  const IdleWatch watch = watch_selected_folder(state);
  const auto poll = watch.new_dir && watch.cur_dir ? kIdlePollSafety : kIdlePollFallback;

  // IDLE may last all day (issue 15 item 4: 10,000 idle connections): keep
  // no spare buffer capacity while it does, and no reading coroutine: the
  // loop takes what input is there, leaves one readiness wait on the socket
  // (a handler that wakes the loop) and sleeps on the timer.
  framer_.shrink();
  out_.shrink_to_fit();
  engine_->release_spare_capacity();
  deadline_.start(timeout());

  std::optional<std::string> line;
  bool read = false;  // "DONE" may already be framed (pipelined right after IDLE)
  for (;;) {
    const IdleInput got = take_idle_input(state, read, line);
    read = true;
    if (got == IdleInput::line || got == IdleInput::ended) break;
    if (got == IdleInput::more) continue;  // more input is here already

    // Sleep until input, a change in the folder, the poll or the deadline.
    while (!state->input_ready && !state->changed) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline_.at()) break;
      state->wake.expires_at(std::min(now + poll, deadline_.at()));
      auto [ec] = co_await state->wake.async_wait(asio::as_tuple(net::use_awaitable));
      if (!ec) state->changed = true;  // the poll's time: look at the folder
    }
    if (state->input_ready) {
      state->input_ready = false;
      continue;
    }
    if (!state->changed) {
      co_await autologout(" in IDLE");
      break;
    }
    state->changed = false;
    auto& engine = *engine_;
    auto poll_task = [&]() -> net::awaitable<std::string> { co_return engine.idle_poll(); };
    std::string updates = co_await asio::co_spawn(ctx_.blocking, poll_task, net::use_awaitable);
    if (!updates.empty()) {
      // RFC 2177 §3: untagged EXISTS/EXPUNGE/FETCH while idling.
      const bool sent = co_await send(updates);
      if (!sent) break;
    }
    if (engine.state() == protocol::State::logout) {  // the poll ended the session (its BYE sent)
      line.reset();
      break;
    }
  }
  // The readiness wait refers only to `state`; it ends with this call.
  if (state->waiting_for_input) {
    net::error_code ignored;
    stream_.socket().cancel(ignored);
  }
  co_return line;
}

}  // namespace

ImapSettings ImapSettings::from(const config::Config& config) {
  ImapSettings s;
  s.mailboxes_dir = config.mailboxes_dir();
  s.idle_timeout = config.limits.imap_idle_timeout;
  s.stress_timeout = config.limits.stress_timeout;
  s.line_length = config.limits.line_length;
  s.message_size = config.limits.message_size;
  s.max_errors = config.limits.errors;
  s.allow_plaintext = config.auth.allow_plaintext;
  return s;
}

net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, ImapContext& ctx,
                                 bool implicit_tls) {
  net::Stream stream(std::move(socket), ctx.tls, ctx.settings.line_length);
  if (admission.refusal == net::Refusal::access) {
    // [access] denies the client (the listener logged it): RFC 3501 §7.1.5,
    // BYE as the greeting rejects the connection. On 993 it is closed
    // without a word: a denied network never reaches TLS.
    if (!implicit_tls) co_await stream.write("* BYE access denied\r\n", std::chrono::seconds(10));
    stream.close();
    co_return;
  }
  if (!admission.lease) {
    // On 993 it is closed without a word: a TLS handshake to say so would
    // hold a descriptor (and the handshake's memory) that no limit counts,
    // and a flood of such connections would exhaust them.
    if (!implicit_tls) co_await stream.write("* BYE [UNAVAILABLE] too many connections\r\n", std::chrono::seconds(10));
    base::logger("imapd")->warn("{}:{} refused: too many connections", stream.remote_ip(), stream.remote_port());
    stream.close();
    co_return;
  }
  {
    Session session(ctx, stream, *admission.lease);
    co_await session.run(implicit_tls);
    session.log_end();
  }
  stream.close();
}

}  // namespace hikyaku::imap
