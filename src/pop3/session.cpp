// The only POP3 file that includes Asio (DESIGN.md: one Asio TU ≈ 30 s).
#include "pop3/session.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "base/file.hpp"
#include "base/log.hpp"
#include "base/strings.hpp"
#include "config/config.hpp"
#include "login/mailbox_login.hpp"
#include "mailbox/maildir.hpp"
#include "net/stream.hpp"
#include "pop3/protocol/state_machine.hpp"

namespace hikyaku::pop3 {
namespace {

namespace asio = net::asio;
using protocol::Action;
using protocol::LoginOutcome;

struct Login {
  LoginOutcome outcome = LoginOutcome::unavailable;
  std::unique_ptr<LockTable::Lock> lock;
  std::vector<mailbox::MessageInfo> messages;
  std::string detail;  // log reason, never sent to the client
};

class Session {
 public:
  Session(Pop3Context& ctx, net::Stream& stream, const net::ConnectionLimiter::Lease& lease)
      : ctx_(ctx),
        stream_(stream),
        lease_(lease),
        log_(base::logger("pop3d")),
        id_(stream.remote_ip() + ":" + std::to_string(stream.remote_port())),
        timeout_(ctx.settings.idle_timeout) {}

  net::awaitable<void> run(bool implicit_tls);
  // The connection's one log line at its end (a client that never logged
  // in included): who, whether TLS was on, and how it ended.
  void log_end() const {
    log_->info("{} disconnect from [{}] user={} tls={}", id_, stream_.remote_ip(), machine_ && !machine_->user().empty() ? machine_->user() : std::string("-"),
               stream_.tls_active() ? "yes" : "no");
  }

 private:
  // The autologout timer, [limits] stress_timeout while the pool is nearly full.
  std::chrono::seconds timeout() const {
    return lease_.under_stress() ? std::min(timeout_, ctx_.settings.stress_timeout) : timeout_;
  }
  net::awaitable<bool> flush();
  net::awaitable<Action> authenticate(Action a);
  net::awaitable<Action> retrieve(const Action& a);
  net::awaitable<Action> update(const Action& a);

  Pop3Context& ctx_;
  net::Stream& stream_;
  const net::ConnectionLimiter::Lease& lease_;
  std::shared_ptr<spdlog::logger> log_;
  std::string id_;
  std::chrono::seconds timeout_;
  std::optional<protocol::StateMachine> machine_;
  std::string out_;  // replies not yet written (RFC 2449 §6.6 PIPELINING)
  std::optional<mailbox::Maildir> maildir_;
  std::vector<mailbox::MessageInfo> messages_;
  std::unique_ptr<LockTable::Lock> lock_;
};

net::awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  bool ok = co_await stream_.write(out_, timeout());
  out_.clear();
  if (!ok && stream_.timed_out()) log_->info("{} write timeout: the client stopped reading", id_);
  co_return ok;
}

net::awaitable<void> Session::run(bool implicit_tls) {
  log_->info("{} connect from [{}]:{} (pop3{})", id_, stream_.remote_ip(), stream_.remote_port(),
             implicit_tls ? "s" : "");
  // RFC 8314 §3.3: on 995 the TLS handshake comes before any POP3 byte.
  if (implicit_tls) {
    const bool tls_ok = co_await stream_.start_tls(timeout());
    if (!tls_ok) {
      log_->debug("{} TLS handshake failed on pop3s", id_);
      co_return;
    }
  }
  protocol::Options options;
  options.tls_available = ctx_.tls != nullptr;
  options.tls_active = stream_.tls_active();
  options.allow_plaintext = ctx_.settings.allow_plaintext;
  options.max_errors = std::max(1u, ctx_.settings.max_errors);
  machine_.emplace(options);
  auto& sm = *machine_;
  out_ = sm.greeting();
  const bool greeted = co_await flush();
  if (!greeted) co_return;

  for (;;) {
    // RFC 1939 §3: the autologout timer; on expiry the session ends without
    // entering UPDATE, so nothing marked for deletion is removed.
    // The whole line by the deadline (a trickling peer is cut off too).
    auto line = co_await stream_.read_line_until(std::chrono::steady_clock::now() + timeout());
    Action action;
    switch (line.status) {
      case net::Stream::ReadStatus::line:
        action = sm.on_line(line.text);
        break;
      case net::Stream::ReadStatus::too_long:
        action = sm.line_too_long();
        break;
      case net::Stream::ReadStatus::timeout:
        out_ += "-ERR autologout: idle for too long\r\n";
        co_await flush();
        log_->info("{} idle timeout{}", id_, sm.user().empty() ? "" : " user=" + sm.user());
        co_return;
      case net::Stream::ReadStatus::closed:
      case net::Stream::ReadStatus::error:
        // Dropped without QUIT: no UPDATE state, deletions are forgotten.
        log_->debug("{} connection closed by peer", id_);
        co_return;
    }

    // Carry out the machine's requests until it only wants to talk.
    for (;;) {
      out_ += action.reply;
      if (action.kind == Action::Kind::authenticate) {
        action = co_await authenticate(std::move(action));
        continue;
      }
      if (action.kind == Action::Kind::retrieve) {
        action = co_await retrieve(action);
        continue;
      }
      if (action.kind == Action::Kind::update) {
        action = co_await update(action);
        continue;
      }
      break;
    }

    if (action.kind == Action::Kind::close) {
      co_await flush();
      log_->debug("{} session ended", id_);
      co_return;
    }
    if (action.kind == Action::Kind::start_tls) {
      const bool flushed = co_await flush();
      if (!flushed) co_return;
      const bool tls_ok = co_await stream_.start_tls(timeout());
      if (!tls_ok) {
        log_->info("{} STLS handshake failed", id_);
        co_return;
      }
      sm.tls_started();
      log_->debug("{} STLS: {}", id_, stream_.tls_description());
      continue;
    }
    // RFC 2449 §6.6 PIPELINING: answer a batch of commands in one write.
    if (!stream_.has_buffered_input() || out_.size() > 65536) {
      const bool flushed = co_await flush();
      if (!flushed) co_return;
    }
  }
}

net::awaitable<Action> Session::authenticate(Action a) {
  auto& sm = *machine_;
  const login::LoginSession session{*log_, id_, stream_.remote_ip(), stream_.tls_active(),
                                      metrics::Protocol::pop3};
  login::LoginAttempt attempt{std::move(a.user), std::move(a.password), a.mechanism, a.refused};
  base::wipe(a.password);
  const login::LoginResult result = co_await ctx_.logins.check(session, std::move(attempt));
  const std::optional<std::string>& mailbox = result.mailbox;
  if (!mailbox) co_return sm.login_result(result.busy ? LoginOutcome::unavailable : LoginOutcome::bad_credentials);

  // RFC 1939 §8: lock the maildrop, then take the message list that stays
  // fixed for the whole session. Filesystem work goes to the blocking pool.
  mailbox::Maildir maildir(ctx_.settings.mailboxes_dir / *mailbox);
  Login login = co_await asio::co_spawn(
      ctx_.blocking,
      [&]() -> net::awaitable<Login> {
        Login out;
        if (auto st = maildir.create(); !st) {
          out.detail = st.error().message;
          co_return out;
        }
        auto lock = ctx_.locks->try_lock(*mailbox, maildir.root() / "hikyaku-pop3.lock");
        if (!lock) {
          out.detail = lock.error().message;
          co_return out;
        }
        if (!*lock) {
          out.outcome = LoginOutcome::in_use;
          co_return out;
        }
        // Under the lock IMAP lists and renames under: the listing may give
        // other programs' files new names (Maildir::list).
        auto names = maildir.lock_names();
        if (!names) {
          out.detail = names.error().message;
          co_return out;
        }
        auto list = maildir.list();
        *names = base::UniqueFd();  // released: the maildrop lock stays
        if (!list) {
          out.detail = list.error().message;
          co_return out;
        }
        out.outcome = LoginOutcome::ok;
        out.lock = std::move(lock.value());
        out.messages = std::move(list.value());
        co_return out;
      },
      net::use_awaitable);

  switch (login.outcome) {
    case LoginOutcome::ok:
      break;
    case LoginOutcome::in_use:
      log_->info("{} login refused: user={} maildrop in use", id_, *mailbox);
      co_return sm.login_result(LoginOutcome::in_use);
    default:
      log_->error("{} login: user={} maildrop unavailable: {}", id_, *mailbox, login.detail);
      co_return sm.login_result(LoginOutcome::unavailable);
  }

  std::vector<protocol::MessageEntry> entries;
  entries.reserve(login.messages.size());
  for (const auto& m : login.messages) entries.push_back({m.uid, m.size});
  log_->info("{} login: user={} mechanism={} tls={} messages={}", id_, *mailbox, a.mechanism,
             stream_.tls_active() ? stream_.tls_description() : "no", entries.size());
  lock_ = std::move(login.lock);
  messages_ = std::move(login.messages);
  maildir_.emplace(std::move(maildir));
  co_return sm.login_result(LoginOutcome::ok, std::move(entries));
}

net::awaitable<Action> Session::retrieve(const Action& a) {
  HIKYAKU_CHECK(maildir_ && a.message < messages_.size());
  auto& info = messages_[a.message];
  bool mark_seen = !a.top_lines.has_value();
  bool gone = false;
  std::optional<std::string> content = co_await asio::co_spawn(
      ctx_.blocking,
      [&]() -> net::awaitable<std::optional<std::string>> {
        auto data = maildir_->read(info);
        if (!data && data.error().error_number == ENOENT) {
          // Removed meanwhile by another reader (an IMAP client, mutt).
          log_->info("{} user={} read {}: removed by another program since login", id_, machine_->user(), info.uid);
          gone = true;
          co_return std::nullopt;
        }
        if (!data) {
          log_->error("{} user={} read {}: {}", id_, machine_->user(), info.uid, data.error().message);
          co_return std::nullopt;
        }
        // Maildir convention: a message a reader has seen leaves new/, and
        // RETR (not TOP, which fetchmail uses to peek) sets the S flag, as
        // Dovecot's POP3 does, so IMAP clients show it as read.
        // Under the lock IMAP changes flags under, onto the flags the file
        // has now: an IMAP client's \Flagged or \Deleted since our login
        // stays.
        if (mark_seen && info.flags.find('S') == std::string::npos) {
          auto held = maildir_->lock_names();
          auto st = held ? maildir_->add_flag(info, 'S') : base::Status(held.error());
          if (!st) log_->warn("{} user={} flag {}: {}", id_, machine_->user(), info.uid, st.error().message);
        }
        co_return std::move(data.value());
      },
      net::use_awaitable);
  co_return gone ? machine_->message_gone() : machine_->message_loaded(content);
}

net::awaitable<Action> Session::update(const Action& a) {
  HIKYAKU_CHECK(maildir_);
  // RFC 1939 §6: UPDATE removes the messages marked with DELE, now only.
  size_t failed = co_await asio::co_spawn(
      ctx_.blocking,
      [&]() -> net::awaitable<size_t> {
        size_t failures = 0;
        for (size_t index : a.deletions) {
          if (index >= messages_.size()) continue;
          if (auto st = maildir_->remove(messages_[index]); !st) {
            ++failures;
            log_->error("{} user={} remove {}: {}", id_, machine_->user(), messages_[index].uid,
                        st.error().message);
          }
        }
        co_return failures;
      },
      net::use_awaitable);
  log_->info("{} user={} update: deleted={} failed={}", id_, machine_->user(),
             a.deletions.size() - failed, failed);
  co_return machine_->update_done(failed == 0);
}

}  // namespace

Pop3Settings Pop3Settings::from(const config::Config& config) {
  Pop3Settings s;
  s.mailboxes_dir = config.mailboxes_dir();
  s.idle_timeout = config.limits.pop3_idle_timeout;
  s.stress_timeout = config.limits.stress_timeout;
  s.line_length = config.limits.line_length;
  s.max_errors = config.limits.errors;
  s.allow_plaintext = config.auth.allow_plaintext;
  return s;
}

net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, Pop3Context& ctx,
                                 bool implicit_tls) {
  net::Stream stream(std::move(socket), ctx.tls, ctx.settings.line_length);
  if (admission.refusal == net::Refusal::access) {
    // [access] denies the client (the listener logged it). A plain -ERR
    // greeting: RFC 2449 §8 response codes name temporary or system
    // conditions, and this is neither. On 995 the connection is closed
    // without a word: a denied network never reaches TLS.
    if (!implicit_tls) co_await stream.write("-ERR access denied\r\n", std::chrono::seconds(10));
    stream.close();
    co_return;
  }
  if (!admission.lease) {
    // The listener's connection limits: tell the client and hang up. On 995
    // without a word: a TLS handshake to say so would hold a descriptor
    // (and the handshake's memory) that no limit counts.
    if (!implicit_tls) co_await stream.write("-ERR [SYS/TEMP] too many connections\r\n", std::chrono::seconds(10));
    base::logger("pop3d")->warn("{}:{} refused: too many connections", stream.remote_ip(),
                                stream.remote_port());
    stream.close();
    co_return;
  }
  {
    Session session(ctx, stream, *admission.lease);
    co_await session.run(implicit_tls);
    session.log_end();
  }  // the maildrop lock is released here, before the socket closes
  stream.close();
}

}  // namespace hikyaku::pop3
