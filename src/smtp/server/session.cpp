#include "smtp/server/session.hpp"

#include <array>
#include <chrono>
#include <random>
#include <string>

#include <fmt/format.h>

#include "base/log.hpp"
#include "base/strings.hpp"
#include "login/mailbox_login.hpp"
#include "net/line_buffer.hpp"
#include "net/stream.hpp"
#include "smtp/protocol/auth_exchange.hpp"
#include "smtp/protocol/command.hpp"
#include "smtp/protocol/data_reader.hpp"
#include "smtp/protocol/received.hpp"
#include "smtp/protocol/replies.hpp"
#include "smtp/server/transaction.hpp"

namespace hikyaku::smtp::server {
namespace {

namespace asio = net::asio;
using mail::Reply;
using protocol::Command;
using protocol::Verb;
namespace reply = protocol::reply;

// RFC 5321 §4.1.4 sequence, as states (OpenSMTPD/Postfix style, STYLE R8).
enum class State : unsigned {
  connected = 1u << 0,  // greeting sent; no EHLO/HELO yet (or reset by STARTTLS)
  greeted = 1u << 1,    // after EHLO/HELO; no transaction
  mail = 1u << 2,       // after MAIL FROM
  rcpt = 1u << 3,       // at least one accepted RCPT TO
  data = 1u << 4,       // reading the message
  closing = 1u << 5,    // QUIT, timeout, error limit: nothing more is read
};

constexpr unsigned mask(State s) { return static_cast<unsigned>(s); }
constexpr unsigned kAnyCommandState =
    mask(State::connected) | mask(State::greeted) | mask(State::mail) | mask(State::rcpt);
constexpr unsigned kAfterHelo = mask(State::greeted) | mask(State::mail) | mask(State::rcpt);

std::string_view state_name(State s) {
  switch (s) {
    case State::connected: return "connected";
    case State::greeted: return "greeted";
    case State::mail: return "mail";
    case State::rcpt: return "rcpt";
    case State::data: return "data";
    case State::closing: return "closing";
  }
  return "?";
}

std::string_view role_name(Role r) {
  switch (r) {
    case Role::mx: return "smtp";
    case Role::submission: return "submission";
    case Role::submissions: return "submissions";
  }
  return "?";
}

// What the I/O loop must do after a command's reply is queued.
enum class Step { next, read_data, start_tls, authenticate, verify_recipient, quit };

// Failed AUTH attempts before the session ends (as POP3 and IMAP do).
constexpr unsigned kMaxAuthFailures = 3;

// Command flags (Postfix-style).
constexpr unsigned kFlush = 1u << 0;  // flush replies before reading again (RFC 2920 §3.1 group end)

class Session;

}  // namespace

Settings Settings::from(const config::Config& config) {
  Settings s;
  s.hostname = config.hostname;
  s.postmaster_domain = config.domains.empty() ? base::to_lower(config.hostname) : config.domains.front().name;
  s.limits = config.limits;
  s.allow_plaintext = config.auth.allow_plaintext;
  s.reveal_client = config.auth.reveal_client;
  return s;
}

namespace {

struct CommandSpec {
  Verb verb;
  unsigned allowed_states;       // where the verb is valid
  std::string_view out_of_order; // 503 5.5.1 text when it is not
  unsigned flags;
  // check writes the 4xx/5xx reply itself (returns it); proceed does the work.
  std::optional<Reply> (Session::*check)(Command&);
  Step (Session::*proceed)(Command&);
};

class Session {
 public:
  Session(net::tcp::socket socket, ServerContext& ctx, Role role)
      : ctx_(ctx),
        role_(role),
        stream_(std::move(socket), ctx.tls, ctx.settings.limits.line_length),
        lines_(ctx.settings.limits.line_length),
        log_(base::logger("smtpd")) {
    // A log correlation id, not a secret: one seeded generator per thread
    // (std::random_device costs a system call or more per construction).
    thread_local std::mt19937_64 ids{std::random_device{}()};
    id_ = fmt::format("{:08X}", ids() & 0xFFFFFFFFFFFFull);
  }

  net::awaitable<void> run(net::Refusal refusal);
  // The connection's slot: its pool's stress shortens the timeouts.
  void set_lease(const net::ConnectionLimiter::Lease* lease) { lease_ = lease; }

  // Checks and actions of the command table (public so the constexpr table
  // can name them).
  std::optional<Reply> check_ehlo(Command&);
  Step do_ehlo(Command&);
  Step do_helo(Command&);
  std::optional<Reply> check_mail(Command&);
  Step do_mail(Command&);
  std::optional<Reply> check_rcpt(Command&);
  Step do_rcpt(Command&);
  std::optional<Reply> check_data(Command&);
  Step do_data(Command&);
  Step do_rset(Command&);
  Step do_noop(Command&);
  Step do_quit(Command&);
  Step do_vrfy(Command&);
  Step do_help(Command&);
  Step do_not_implemented(Command&);
  std::optional<Reply> check_starttls(Command&);
  Step do_starttls(Command&);
  std::optional<Reply> check_auth(Command&);
  Step do_auth(Command&);

 private:
  bool submission() const { return role_ != Role::mx; }
  bool authenticated() const { return !auth_user_.empty(); }
  // RFC 4954 §4 / RFC 8314: AUTH only on the submission ports, and only
  // inside TLS unless [auth] allow_plaintext.
  bool auth_offered() const {
    return submission() && ctx_.logins != nullptr && (stream_.tls_active() || ctx_.settings.allow_plaintext);
  }
  enum class LineRead { line, too_long, closed };
  net::awaitable<LineRead> read_line(std::string& line);
  net::awaitable<bool> read_more(std::string_view when);
  net::awaitable<void> authenticate();
  net::awaitable<void> verify_recipient();
  // RFC 5321 §4.5.3.2.7's 5 minutes ([limits] command_timeout), or
  // stress_timeout while this protocol's pool is nearly full (Postfix's
  // stress mode).
  std::chrono::steady_clock::duration timeout() const {
    const auto& l = ctx_.settings.limits;
    return lease_ != nullptr && lease_->under_stress() ? std::min(l.command_timeout, l.stress_timeout)
                                                       : l.command_timeout;
  }
  void enter_state(State s);
  void send(const Reply& r);
  net::awaitable<bool> flush();
  Step dispatch(std::string_view line);
  net::awaitable<void> receive_data();
  net::awaitable<base::Result<Admission>> admit(mail::Envelope envelope, mail::Message message);
  // A large message's body file while DATA arrives (spill()).
  struct Spill {
    std::optional<mail::FileRange> range;
    base::Status error;
  };
  net::awaitable<void> spill(protocol::DataReader& reader, Spill& spill);
  net::awaitable<bool> handshake_tls();
  void count_error(const Reply& r);

  ServerContext& ctx_;
  Role role_;
  const net::ConnectionLimiter::Lease* lease_ = nullptr;  // null: refused
  net::ProgressDeadline deadline_;  // for the command line (or DATA) being read
  net::Stream stream_;
  net::LineBuffer lines_;  // our own buffer: DATA needs the bytes after the 354 raw
  std::shared_ptr<spdlog::logger> log_;
  std::string id_;
  State state_ = State::connected;
  Transaction tx_;
  std::string helo_;
  bool esmtp_ = false;
  bool said_helo_ = false;  // HELO (not EHLO) was the last greeting
  std::string out_;  // replies waiting to be written (pipelining, RFC 2920)
  unsigned errors_ = 0;
  unsigned commands_ = 0;
  unsigned messages_ = 0;
  unsigned tx_serial_ = 0;
  std::string auth_user_;  // the [[mailbox]] logged in with AUTH, or empty
  std::optional<mail::Address> pending_rcpt_;  // RCPT waiting for the next hop's answer
  unsigned auth_failures_ = 0;
  protocol::AuthExchange auth_;            // the AUTH exchange in progress
  protocol::AuthExchange::Step auth_step_;  // its first step (from do_auth)
};

// The command table (STYLE R8): verb, states, 503 text, flags, check, proceed.
constexpr std::array<CommandSpec, 14> kCommands{{
    {Verb::ehlo, kAnyCommandState, "", kFlush, &Session::check_ehlo, &Session::do_ehlo},
    {Verb::helo, kAnyCommandState, "", 0, &Session::check_ehlo, &Session::do_helo},
    {Verb::mail, mask(State::greeted), "", 0, &Session::check_mail, &Session::do_mail},
    {Verb::rcpt, mask(State::mail) | mask(State::rcpt), "need MAIL command", 0, &Session::check_rcpt,
     &Session::do_rcpt},
    {Verb::data, mask(State::mail) | mask(State::rcpt), "need MAIL command", kFlush, &Session::check_data,
     &Session::do_data},
    {Verb::rset, kAnyCommandState, "", 0, nullptr, &Session::do_rset},
    {Verb::noop, kAnyCommandState, "", 0, nullptr, &Session::do_noop},
    {Verb::quit, kAnyCommandState, "", kFlush, nullptr, &Session::do_quit},
    {Verb::vrfy, kAnyCommandState, "", 0, nullptr, &Session::do_vrfy},
    {Verb::expn, kAnyCommandState, "", 0, nullptr, &Session::do_not_implemented},
    {Verb::help, kAnyCommandState, "", 0, nullptr, &Session::do_help},
    {Verb::starttls, mask(State::greeted), "send EHLO first", kFlush, &Session::check_starttls,
     &Session::do_starttls},
    // RFC 4954 §4: not during a mail transaction. BDAT (RFC 3030) is not offered.
    {Verb::auth, mask(State::greeted), "MAIL transaction in progress", kFlush, &Session::check_auth,
     &Session::do_auth},
    {Verb::bdat, kAnyCommandState, "", 0, nullptr, &Session::do_not_implemented},
}};

void Session::enter_state(State s) {
  if (s == state_) return;
  log_->trace("{} state {} -> {}", id_, state_name(state_), state_name(s));
  state_ = s;
}

// Queue a reply. Enhanced codes go to everyone except a client that said
// HELO (RFC 2034 §3: the extension is negotiated by EHLO; a HELO client has
// declared it speaks plain RFC 821). Before any greeting we send them, as
// Postfix does: RFC 3463 codes in the text are harmless to old clients.
void Session::send(const Reply& r) { out_ += r.wire(!said_helo_); }

net::awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  std::string data;
  data.swap(out_);
  const bool written = co_await stream_.write(data, timeout());
  if (!written && stream_.timed_out()) log_->info("{} write timeout: [{}] stopped reading", id_, stream_.remote_ip());
  co_return written;
}

void Session::count_error(const Reply& r) {
  // Postfix counts every rejected command towards smtpd_hard_error_limit;
  // that also slows recipient guessing.
  if (r.code >= 500) ++errors_;
}

// ---------------------------------------------------------------- commands

std::optional<Reply> Session::check_ehlo(Command&) { return std::nullopt; }

// RFC 5321 §4.1.4: EHLO anywhere resets the transaction as RSET does.
Step Session::do_ehlo(Command& cmd) {
  tx_.rollback();
  helo_ = cmd.argument;
  esmtp_ = true;
  said_helo_ = false;
  std::vector<std::string> ext = {
      "PIPELINING",                                                // RFC 2920
      "SIZE " + std::to_string(ctx_.settings.limits.message_size),  // RFC 1870
      "8BITMIME",                                                  // RFC 6152
      "SMTPUTF8",                                                  // RFC 6531
      "ENHANCEDSTATUSCODES",                                       // RFC 2034
  };
  // RFC 3207 §4.2: do not offer STARTTLS once TLS is active.
  if (ctx_.tls && !stream_.tls_active()) ext.push_back("STARTTLS");
  // RFC 4954 §3; not before TLS (RFC 8314 §3.3: credentials stay encrypted).
  if (auth_offered() && !authenticated()) ext.push_back("AUTH PLAIN LOGIN");
  ext.push_back("HELP");
  send(reply::ehlo(ctx_.settings.hostname, ext));
  enter_state(State::greeted);
  return Step::next;
}

Step Session::do_helo(Command& cmd) {
  tx_.rollback();
  helo_ = cmd.argument;
  esmtp_ = false;  // RFC 5321 §4.1.1.1: no service extensions after HELO
  said_helo_ = true;
  send(reply::helo(ctx_.settings.hostname));
  enter_state(State::greeted);
  return Step::next;
}

std::optional<Reply> Session::check_mail(Command& cmd) {
  // RFC 1869 §4.5 / RFC 5321 §4.1.1.11: ESMTP parameters need EHLO.
  const auto& p = cmd.params;
  if (!esmtp_ && (p.size || p.body != protocol::BodyType::unspecified || p.smtputf8))
    return Reply(555, "5.5.4", "Unsupported parameter");
  // RFC 1870 §6.2: a declared size above the limit is refused at MAIL.
  if (p.size && *p.size > ctx_.settings.limits.message_size) return reply::size_declared_too_big();
  // RFC 6531 §3.3-3.4: a UTF-8 reverse-path must be well-formed UTF-8 and
  // needs the SMTPUTF8 parameter.
  if (cmd.path && cmd.path->has_utf8() && !base::valid_utf8(cmd.path->str())) return reply::invalid_utf8_address();
  if (cmd.path && cmd.path->has_utf8() && !p.smtputf8) return reply::smtputf8_required();
  // RFC 4954 §5: AUTH= only where AUTH is offered.
  if (p.auth && !submission()) return Reply(555, "5.5.4", "Unsupported parameter");
  // RFC 6409 §4.3 / RFC 4954 §6: submission takes mail only after AUTH,
  // and only from the login's own addresses (§6.1).
  if (submission()) {
    if (!authenticated()) return reply::auth_required();
    if (auto refused = ctx_.sink.check_sender(cmd.path, auth_user_)) {
      log_->info("{} MAIL refused: user={} from=<{}>: {}", id_, auth_user_,
                 cmd.path ? base::log_printable(ctx_.sink.log_text(cmd.path->str())) : "", refused->summary());
      return *refused;
    }
  }
  return std::nullopt;
}

Step Session::do_mail(Command& cmd) {
  tx_.begin(cmd.path, cmd.params);
  ++tx_serial_;
  send(reply::sender_ok());
  enter_state(State::mail);
  return Step::next;
}

std::optional<Reply> Session::check_rcpt(Command& cmd) {
  auto& rcpt = *cmd.path;
  // RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted; beyond
  // our limit 452 tells the client to send the rest in another transaction.
  if (tx_.recipient_count() >= ctx_.settings.limits.recipients) return reply::too_many_recipients();
  if (rcpt.has_utf8() && !base::valid_utf8(rcpt.str())) return reply::invalid_utf8_address();
  if (rcpt.has_utf8() && !tx_.envelope().smtputf8) return reply::smtputf8_required();
  // RFC 5321 §4.5.1: "<Postmaster>" without a domain is ours.
  if (rcpt.domain.empty()) {
    rcpt.domain = ctx_.settings.postmaster_domain;
  }
  // RFC 5321 §7.1: relaying only for an authenticated user.
  if (auto refused = ctx_.sink.check_recipient(rcpt, authenticated())) {
    log_->info("{} RCPT rejected: <{}>: {}", id_, ctx_.sink.log_text(rcpt.str()), refused->summary());
    return *refused;
  }
  return std::nullopt;
}

Step Session::do_rcpt(Command& cmd) {
  // Issue 14: a gateway recipient the next hop is asked about first.
  if (ctx_.verifier != nullptr && !authenticated() && ctx_.verifier->wants(*cmd.path)) {
    pending_rcpt_ = std::move(*cmd.path);
    return Step::verify_recipient;
  }
  tx_.add_recipient(std::move(*cmd.path));
  send(reply::recipient_ok());
  enter_state(State::rcpt);
  return Step::next;
}

// The RCPT that do_rcpt() held back: the next hop's verdict (cached by the
// verifier) decides between 250 and its refusal; replies stay in command
// order because nothing else is read meanwhile.
net::awaitable<void> Session::verify_recipient() {
  mail::Address rcpt = std::move(*pending_rcpt_);
  pending_rcpt_.reset();
  const auto serial = tx_serial_;
  auto refused = co_await ctx_.verifier->verify(rcpt);
  if (serial != tx_serial_ || state_ == State::closing) co_return;
  if (refused) {
    log_->info("{} RCPT rejected: <{}>: {}", id_, ctx_.sink.log_text(rcpt.str()), refused->summary());
    count_error(*refused);
    send(*refused);
    co_return;
  }
  tx_.add_recipient(std::move(rcpt));
  send(reply::recipient_ok());
  enter_state(State::rcpt);
}

std::optional<Reply> Session::check_data(Command&) {
  // RFC 5321 §3.3: DATA with no accepted recipient gets 554 (or 503).
  if (tx_.recipient_count() == 0) return reply::no_valid_recipients();
  return std::nullopt;
}

Step Session::do_data(Command&) {
  send(reply::start_data());
  enter_state(State::data);
  return Step::read_data;
}

// RFC 5321 §4.1.1.5: RSET aborts the transaction; the EHLO stays.
Step Session::do_rset(Command&) {
  tx_.rollback();
  if (state_ == State::mail || state_ == State::rcpt) enter_state(State::greeted);
  send(reply::reset_ok());
  return Step::next;
}

Step Session::do_noop(Command&) {
  send(reply::ok());
  return Step::next;
}

Step Session::do_quit(Command&) {
  send(reply::bye());
  enter_state(State::closing);
  return Step::quit;
}

// RFC 5321 §3.5.3: we do not disclose which users exist.
Step Session::do_vrfy(Command&) {
  send(reply::cannot_vrfy());
  return Step::next;
}

Step Session::do_help(Command&) {
  send(reply::help());
  return Step::next;
}

Step Session::do_not_implemented(Command&) {
  auto r = reply::not_implemented();
  count_error(r);
  send(r);
  return Step::next;
}

std::optional<Reply> Session::check_starttls(Command&) {
  if (stream_.tls_active()) return reply::tls_already_active();
  if (!ctx_.tls) return reply::tls_unavailable();  // RFC 3207 §4: 454
  return std::nullopt;
}

Step Session::do_starttls(Command&) {
  send(reply::tls_ready());
  return Step::start_tls;
}

std::optional<Reply> Session::check_auth(Command&) {
  if (!submission() || ctx_.logins == nullptr) return reply::auth_not_offered();
  if (!esmtp_) return reply::bad_sequence("send EHLO first");  // RFC 4954 §3: an ESMTP extension
  if (authenticated()) return reply::auth_already();            // RFC 4954 §4
  if (!auth_offered()) return reply::auth_needs_tls();          // RFC 4954 §6: 538
  return std::nullopt;
}

// The exchange itself runs in authenticate() (it reads more lines).
Step Session::do_auth(Command& cmd) {
  auth_ = protocol::AuthExchange{};
  auth_step_ = auth_.start(cmd.argument);
  base::wipe(cmd.argument);  // may hold an initial response (a password)
  return Step::authenticate;
}

// Parse one line, look the verb up in the table, run check then proceed.
Step Session::dispatch(std::string_view line) {
  ++commands_;
  auto parsed = protocol::parse_command(line);
  if (!parsed.ok()) {
    log_->debug("{} {}: {}", id_, parsed.reason, parsed.error.summary());
    count_error(parsed.error);
    send(parsed.error);
    return Step::next;
  }
  Command& cmd = *parsed.command;
  for (const auto& spec : kCommands) {
    if (spec.verb != cmd.verb) continue;
    if (!(spec.allowed_states & mask(state_))) {
      // RFC 5321 §4.3.2: out-of-sequence commands get 503.
      std::string_view why = spec.out_of_order;
      if (state_ == State::connected) why = "send HELO/EHLO first";
      else if (cmd.verb == Verb::mail) why = "nested MAIL command";
      else if (why.empty()) why = "bad sequence of commands";
      auto r = reply::bad_sequence(why);
      count_error(r);
      send(r);
      return Step::next;
    }
    if (spec.check) {
      if (auto refused = (this->*spec.check)(cmd)) {
        count_error(*refused);
        send(*refused);
        return Step::next;
      }
    }
    return (this->*spec.proceed)(cmd);
  }
  auto r = Reply(500, "5.5.2", "Command not recognized");
  count_error(r);
  send(r);
  return Step::next;
}

// ---------------------------------------------------------------- DATA

net::awaitable<void> Session::receive_data() {
  // RFC 5321 §4.4: our Received field starts the message; it is written
  // into the reader's buffer first, so the message is never copied to
  // prepend it. The queue id is known only after store(), so its `id` is
  // the session-local transaction id and the log line ties both together.
  const std::string txid = fmt::format("{}.{}", id_, tx_serial_);
  protocol::ReceivedInfo info;
  info.helo = helo_;
  info.client_ip = stream_.remote_ip();
  info.hostname = ctx_.settings.hostname;
  info.esmtp = esmtp_;
  info.tls = stream_.tls_active();
  if (const auto tls = stream_.tls_parameters()) {
    info.tls_version = tls->version;
    info.tls_cipher = tls->cipher;
    info.tls_secret_bits = tls->secret_bits;
    info.tls_algorithm_bits = tls->algorithm_bits;
  }
  info.authenticated = authenticated();
  // Submitted mail does not reveal where its author was (a home address):
  // the Received field names no client unless [auth] reveal_client.
  info.hide_client = authenticated() && !ctx_.settings.reveal_client;
  info.smtputf8 = tx_.envelope().smtputf8;
  info.id = txid;
  if (tx_.envelope().recipients.size() == 1) info.for_recipient = tx_.envelope().recipients.front().str();
  info.when = std::chrono::system_clock::now();
  // A message past mail::kSpillThreshold keeps its body in a file the sink
  // provides (issue 12 item 6: memory does not grow with message size).
  protocol::DataReader reader({.max_size = ctx_.settings.limits.message_size,
                               .max_received = ctx_.settings.limits.received_headers,
                               .size_hint = tx_.declared_size().value_or(0),
                               .spill_at = mail::kSpillThreshold},
                              protocol::received_header(info));
  // Bytes already read after the DATA line are the start of the message.
  std::string pending = lines_.take();
  Spill body;
  // The message's time runs from the 354 and moves on with each complete
  // line (Postfix's smtpd_per_record_deadline): a slow sender of real lines
  // is fine, a trickle of bytes is cut off.
  deadline_.reset();
  deadline_.start(timeout());
  for (;;) {
    size_t used = reader.feed(pending);
    if (reader.spill_due()) co_await spill(reader, body);
    if (reader.done()) {
      // RFC 2920: whatever follows <CRLF>.<CRLF> is the next command group.
      lines_.append(std::string_view(pending).substr(used));
      break;
    }
    pending.clear();
    const bool got = co_await stream_.read_some(pending, deadline_.at());
    if (got) deadline_.progress(pending, timeout());
    if (!got) {
      if (stream_.timed_out()) {
        send(reply::timeout());
        log_->info("{} timeout during DATA from [{}]", id_, stream_.remote_ip());
      }
      tx_.rollback();
      enter_state(State::closing);
      co_return;
    }
  }

  if (reader.outcome() != protocol::DataReader::Outcome::ok) {
    // The smuggling defence, size and loop limits: refuse the whole message,
    // stay in sync (we are past the real end), and forget the transaction.
    auto r = reader.reply();
    log_->info("{} message {} rejected: {} ({}; from=<{}> size={})", id_, txid,
               protocol::DataReader::outcome_name(reader.outcome()), r.summary(),
               ctx_.sink.log_text(tx_.envelope().sender_str()),
               reader.size());
    send(r);
    tx_.rollback();
    enter_state(State::greeted);
    co_return;
  }

  // The rest of a spilled body joins the file; a file that failed is a
  // message not stored (451, or 452 when the disk is full).
  if (reader.spilled()) co_await spill(reader, body);
  if (!body.error.ok()) {
    log_->error("{} message {} not stored: {}", id_, txid, body.error.error().message);
    send(body.error.error().out_of_space() ? reply::no_storage() : reply::not_stored());
    tx_.rollback();
    enter_state(State::greeted);
    co_return;
  }

  mail::Envelope envelope = tx_.commit();
  envelope.helo = helo_;
  envelope.client_ip = stream_.remote_ip();
  envelope.auth_user = auth_user_;
  mail::Message message{reader.take_message(), std::move(body.range)};
  const uint64_t size = message.size();
  mail::Envelope envelope_copy = envelope;  // admit() takes one; the log lines read the other

  // The end of DATA in two steps: admit() decides (checks, plans) and may
  // refuse, or takes the message and may already have started its
  // forwards; commit() makes it durable on the blocking pool (fsync).
  struct Stored {
    bool ok = false;
    std::string text;  // queue id, or the error for the log
    std::optional<Reply> refusal;
    bool out_of_space = false;  // not stored: the disk is full (452, not 451)
  };
  Stored stored;
  auto admitted = co_await admit(std::move(envelope_copy), std::move(message));
  if (!admitted) {
    stored = Stored{false, admitted.error().message, std::nullopt, admitted.error().out_of_space()};
  } else if (admitted->refusal) {
    stored = Stored{false, {}, std::move(admitted->refusal)};
  } else {
    std::unique_ptr<PendingMessage> taken = std::move(admitted->pending);
    auto commit = [&]() -> net::awaitable<Stored> {
      auto id = taken->commit();
      taken.reset();  // on the pool: an abandoned message is settled there too
      if (!id) co_return Stored{false, id.error().message, std::nullopt, id.error().out_of_space()};
      co_return Stored{true, *id, std::nullopt};  // a queue id: a copy costs nothing
    };
    stored = co_await asio::co_spawn(ctx_.blocking, commit, net::use_awaitable);
  }

  if (stored.refusal) {
    // RFC 5321 §4.2.5: a 5xx after the final dot: nothing was stored.
    log_->info("{} message {} refused: {} (from=<{}> size={})", id_, txid, stored.refusal->summary(),
               ctx_.sink.log_text(envelope.sender_str()), size);
    send(*stored.refusal);
  } else if (!stored.ok) {
    // DESIGN.md: 250 only when durable. The peer sees 452 4.3.1 when the
    // disk is full (RFC 3463 X.3.1, RFC 5321 §4.3.2), else a generic 451;
    // the path and errno text stay in the log (STYLE R6).
    log_->error("{} message {} not stored: {}", id_, txid, stored.text);
    send(stored.out_of_space ? reply::no_storage() : reply::not_stored());
  } else {
    ++messages_;
    std::string rcpts;
    for (const auto& r : envelope.recipients) rcpts += (rcpts.empty() ? "<" : ",<") + r.str() + ">";
    log_->info("{} {}: queued from=<{}> size={} nrcpt={} to={} id={} proto={}{}", id_, stored.text,
               ctx_.sink.log_text(envelope.sender_str()), size, envelope.recipients.size(),
               ctx_.sink.log_text(rcpts), txid, protocol::with_protocol(info),
               authenticated() ? " user=" + auth_user_ : std::string());
    send(reply::queued(stored.text));
  }
  enter_state(State::greeted);
}

// A large message's body so far: written to the file the sink gives, on
// the blocking pool (the loop never waits for a disk). Once a write has
// failed, the rest is read and dropped; the end of DATA answers 451/452.

net::awaitable<void> Session::spill(protocol::DataReader& reader, Spill& spill) {
  const std::string_view held = reader.body_held();
  if (spill.error.ok() && !held.empty()) {
    auto write = [&]() -> net::awaitable<base::Status> {
      if (!spill.range) {
        auto file = ctx_.sink.body_file();
        if (!file) co_return file.error();
        auto& [fd, dir] = *file;
        spill.range = mail::FileRange{std::make_shared<const base::UniqueFd>(std::move(fd)), dir, 0, 0};
      }
      auto st = base::write_all(spill.range->file->get(), held, spill.range->path);
      if (st) spill.range->size += held.size();
      co_return st;
    };
    spill.error = co_await asio::co_spawn(ctx_.blocking, write, net::use_awaitable);
  }
  reader.forget_body_held();
}

// The sink's admit(), awaited: its callback may run on any thread, so the
// result is posted back to this session's executor.
net::awaitable<base::Result<Admission>> Session::admit(mail::Envelope envelope, mail::Message message) {
  auto ex = co_await asio::this_coro::executor;
  auto initiate = [&](auto handler) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    ctx_.sink.admit(std::move(envelope), std::move(message), [shared, ex](base::Result<Admission> result) {
      asio::post(ex, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
    });
  };
  co_return co_await asio::async_initiate<decltype(net::use_awaitable), void(base::Result<Admission>)>(
      initiate, net::use_awaitable);
}

// ---------------------------------------------------------------- AUTH

// One more line from the client, inside an exchange (pipelined bytes
// first).
net::awaitable<Session::LineRead> Session::read_line(std::string& line) {
  for (;;) {
    bool bare_lf = false;
    const auto status = lines_.next(line, bare_lf);
    if (status != net::LineBuffer::Status::need_more) {
      deadline_.reset();
      co_return status == net::LineBuffer::Status::line ? LineRead::line : LineRead::too_long;
    }
    const bool got = co_await read_more("during AUTH");
    if (!got) co_return LineRead::closed;
  }
}

// More bytes of the command line being read, by its deadline (a peer
// trickling bytes does not extend it). False: closed, or timed out (421
// queued, logged with `when`).
net::awaitable<bool> Session::read_more(std::string_view when) {
  std::string chunk;
  deadline_.start(timeout());
  const bool got = co_await stream_.read_some(chunk, deadline_.at());
  if (!got) {
    if (stream_.timed_out()) {
      // RFC 5321 §4.5.3.2.7: we waited long enough.
      send(reply::timeout());
      log_->info("{} timeout {} from [{}]", id_, when, stream_.remote_ip());
    }
    co_return false;
  }
  lines_.append(chunk);
  co_return true;
}

// RFC 4954 §4: challenges until the client has said everything, then the
// password check (login/: argon2id on the blocking pool, the failure delay
// on a timer), then 235 or 535. Nothing of the exchange is logged but the
// login name and the mechanism.
net::awaitable<void> Session::authenticate() {
  using Kind = protocol::AuthExchange::Step::Kind;
  protocol::AuthExchange::Step step = std::move(auth_step_);
  while (step.kind == Kind::challenge) {
    send(step.reply);
    const bool written = co_await flush();
    if (!written) {
      enter_state(State::closing);
      co_return;
    }
    std::string line;
    const LineRead got = co_await read_line(line);
    if (got == LineRead::closed) {
      enter_state(State::closing);
      co_return;
    }
    step = got == LineRead::line ? auth_.respond(line)
                                 : protocol::AuthExchange::Step{Kind::refuse, reply::line_too_long(), false};
    base::wipe(line);
  }
  if (step.kind == Kind::refuse) {
    count_error(step.reply);
    send(step.reply);
    co_return;
  }
  const login::LoginSession session{*log_, id_, stream_.remote_ip(), stream_.tls_active(),
                                      metrics::Protocol::submission};
  login::LoginAttempt attempt{auth_.user(), auth_.take_password(), auth_.mechanism(), step.refused};
  const login::LoginResult result = co_await ctx_.logins->check(session, std::move(attempt));
  const std::optional<std::string>& mailbox = result.mailbox;
  if (result.busy) {  // not the client's mistake: it may try again with the same password
    send(reply::auth_busy());
    co_return;
  }
  if (!mailbox) {
    ++auth_failures_;
    const Reply failed = reply::auth_failed();
    count_error(failed);
    send(failed);
    if (auth_failures_ >= kMaxAuthFailures) {
      send(Reply(421, "4.7.0", "Too many failed authentication attempts"));
      log_->info("{} {} failed AUTH attempts from [{}]: closing", id_, auth_failures_, stream_.remote_ip());
      enter_state(State::closing);
    }
    co_return;
  }
  auth_user_ = *mailbox;
  log_->info("{} authenticated: user={} mechanism={} tls={}", id_, auth_user_, auth_.mechanism(),
             stream_.tls_active() ? "yes" : "no");
  send(reply::auth_ok());
}

// ---------------------------------------------------------------- TLS

net::awaitable<bool> Session::handshake_tls() {
  // GCC 12 miscompiles some co_await expressions inside conditions: await
  // into a local first.
  const bool ok = co_await stream_.start_tls(timeout());
  if (!ok) {
    log_->info("{} TLS handshake failed with [{}]", id_, stream_.remote_ip());
    co_return false;
  }
  log_->debug("{} TLS established: {}", id_, stream_.tls_description());
  co_return true;
}

// ---------------------------------------------------------------- loop

net::awaitable<void> Session::run(net::Refusal refusal) {
  if (refusal == net::Refusal::access) {
    // [access] denies the client (the listener logged it): RFC 5321 §3.1
    // allows 554 as the greeting. XXX(access): §3.1 then asks the server to
    // wait for QUIT; we close at once (as postscreen's "drop" does) so that a
    // denied client, which holds no connection slot, holds nothing else. On
    // 465 it is closed without a word: a denied network never reaches TLS.
    if (role_ != Role::submissions) {
      send(reply::access_denied());
      co_await flush();
    }
    stream_.close();
    co_return;
  }
  log_->info("{} connect from [{}]:{} ({})", id_, stream_.remote_ip(), stream_.remote_port(), role_name(role_));
  if (refusal == net::Refusal::limit) {
    // A limit of [limits] refused the slot: say so and hang up (RFC 5321 §3.8);
    // on 465 without a word (a TLS handshake to say so would hold a
    // descriptor that no limit counts).
    if (role_ != Role::submissions) {
      send(reply::too_many_connections());
      co_await flush();
    }
    stream_.close();
    log_->info("{} disconnect from [{}]: too many connections", id_, stream_.remote_ip());
    co_return;
  }
  // RFC 8314 §3: port 465 starts with the TLS handshake, greeting inside TLS.
  if (role_ == Role::submissions) {
    bool tls_ok = false;
    if (ctx_.tls) tls_ok = co_await handshake_tls();
    if (!tls_ok) {
      stream_.close();
      log_->info("{} disconnect from [{}]: no TLS", id_, stream_.remote_ip());
      co_return;
    }
  }
  send(reply::greeting(ctx_.settings.hostname));

  while (state_ != State::closing) {
    std::string line;
    bool bare_lf = false;
    auto status = lines_.next(line, bare_lf);
    if (status == net::LineBuffer::Status::need_more) {
      // RFC 2920 §3.1: answer the whole group before waiting for more.
      const bool written = co_await flush();
      if (!written) break;
      // The whole command line by the deadline, however it trickles in.
      const bool got = co_await read_more("after " + std::string(state_name(state_)));
      if (!got) break;
      continue;
    }
    deadline_.reset();  // a line is here: the next wait starts afresh
    Step step = Step::next;
    if (status == net::LineBuffer::Status::too_long) {
      // RFC 5321 §4.5.3.1.4: command lines are at most 512 octets; we allow
      // the configured line_length and refuse longer ones.
      auto r = reply::line_too_long();
      count_error(r);
      send(r);
    } else {
      // A bare LF ending a command line is tolerated (the line is complete
      // either way); inside DATA it is refused by the DataReader.
      if (bare_lf) log_->debug("{} command line ended in bare LF", id_);
      step = dispatch(line);
    }
    if (errors_ >= ctx_.settings.limits.errors) {
      send(reply::too_many_errors());
      log_->info("{} too many errors ({}) from [{}]", id_, errors_, stream_.remote_ip());
      break;
    }
    switch (step) {
      case Step::next:
        break;
      case Step::read_data: {
        const bool written = co_await flush();
        if (!written) {
          enter_state(State::closing);
          break;
        }
        co_await receive_data();
        break;
      }
      case Step::authenticate:
        base::wipe(line);  // the AUTH line may carry an initial response
        co_await authenticate();
        break;
      case Step::verify_recipient:
        co_await verify_recipient();
        break;
      case Step::start_tls: {
        const bool written = co_await flush();
        if (!written) {
          enter_state(State::closing);
          break;
        }
        // RFC 3207 §4.2: discard pipelined plaintext and forget everything
        // learnt before TLS; the client must EHLO again.
        lines_.clear();
        const bool tls_ok = co_await handshake_tls();
        if (!tls_ok) {
          enter_state(State::closing);
          break;
        }
        tx_.rollback();
        helo_.clear();
        esmtp_ = false;
        said_helo_ = false;
        auth_user_.clear();
        enter_state(State::connected);
        break;
      }
      case Step::quit:
        break;
    }
  }
  co_await flush();
  stream_.close();
  log_->info("{} disconnect from [{}] commands={} errors={} messages={}", id_, stream_.remote_ip(), commands_,
             errors_, messages_);
}

}  // namespace

net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, ServerContext& ctx, Role role) {
  Session session(std::move(socket), ctx, role);
  session.set_lease(admission.lease.get());
  // No lease is a refusal: the limit's unless [access] denied the client.
  auto refusal = net::Refusal::none;
  if (!admission.lease)
    refusal = admission.refusal == net::Refusal::access ? net::Refusal::access : net::Refusal::limit;
  co_await session.run(refusal);
}

}  // namespace hikyaku::smtp::server
