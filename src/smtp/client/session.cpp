#include "smtp/client/session.hpp"

#include "mail/address.hpp"
#include "mail/dsn.hpp"

// XXX(smtp-client): GCC 12 at -O2 reports -Wmismatched-new-delete for Asio's
// coroutine frame allocator (awaitable_frame_base::operator new/delete are a
// matching pair; the warning is GCC bug 109224-like noise after inlining
// aligned_new). Remove when the toolchain moves on.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "base/log.hpp"
#include "base/strings.hpp"
#include "net/stream.hpp"
#include "smtp/protocol/client_auth.hpp"

namespace hikyaku::smtp::client {

using namespace boost::asio::experimental::awaitable_operators;
using net::asio::as_tuple;
using net::error_code;
using net::tcp;
using net::use_awaitable;
using protocol::crlf_lines;
using protocol::WireEncoder;
using protocol::has_8bit;
using protocol::ReplyParser;
namespace asio = net::asio;
namespace ssl = net::ssl;

namespace {

std::shared_ptr<spdlog::logger> log() { return base::logger("smtp-client"); }

// What the commands before the payload need to know of the message, in
// one pass (a large message's body is read from its file): whether it holds
// an octet above 127 (RFC 6152 BODY=8BITMIME) and, when it goes by BDAT, the
// size of its CRLF-line encoding (RFC 3030 BDAT's count).
struct MessageScan {
  bool eight_bit = false;
  uint64_t bdat_size = 0;  // counted only when asked for
};

base::Result<MessageScan> scan(const mail::Message& message, bool count_bdat) {
  MessageScan out;
  WireEncoder counter(WireEncoder::Mode::crlf_lines);
  auto st = mail::for_each_piece(message, [&](std::string_view piece) {
    out.eight_bit = out.eight_bit || protocol::has_8bit(piece);
    if (count_bdat) counter.count(piece);
    return base::Status{};
  });
  if (!st) return st.error();
  if (count_bdat) out.bdat_size = counter.counted_total();
  return out;
}

// RFC 7435 opportunistic TLS for MX delivery: encrypt when offered, accept
// any certificate (no name or chain check — DANE/MTA-STS are later work),
// but never below TLS 1.2 (RFC 8996). The policy is in session.hpp. One
// context for every connection: it is never changed after it is built, and
// OpenSSL allows one SSL_CTX to serve connections on many threads.
const std::shared_ptr<ssl::context>& client_context() {
  static const std::shared_ptr<ssl::context> context = [] {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }();
  return context;
}

// A chunk up to this size rides in the same pipelined group as MAIL and
// RCPT; a larger one waits for their replies, so that a refused recipient
// does not cost its upload.
constexpr size_t kPipelinedChunk = 64 * 1024;
// The largest write of message data (each write is bounded by the data
// block timeout, RFC 5321 §4.5.3.2.5).
constexpr size_t kBlock = 64 * 1024;

// A transaction this client will not start: what the server announced
// rules it out for good (its SIZE, no SMTPUTF8, no 8BITMIME).
Outcome not_sendable(std::string status, std::string detail) {
  Outcome o;
  o.kind = Outcome::Kind::permanent;
  o.status = std::move(status);
  o.detail = std::move(detail);
  return o;
}

// A transaction refused at MAIL or RCPT: the first refusal is the outcome.
Outcome refused_transaction(const ServerReply& mail_reply, const ServerReply& rcpt_reply) {
  return !mail_reply.positive() ? classify(mail_reply, Stage::mail) : classify(rcpt_reply, Stage::rcpt);
}

// The pool key: the address, and what makes a session differ for the
// same address (a [[route]]'s HELO name, TLS requirement and login), so a
// connection logged in as one account never carries another's mail.
std::string endpoint_key(const std::string& ip, uint16_t port, const ClientOptions& options) {
  std::string key = (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
  key += " helo=" + options.helo_name;
  if (!options.source.empty()) key += " from=" + options.source.v4 + "," + options.source.v6;
  if (options.require_tls) key += " tls";
  if (options.verify_certificate) key += " verify@" + std::to_string(reinterpret_cast<uintptr_t>(options.tls_context.get()));
  if (options.login) key += " login=" + options.login->user;
  return key;
}

}  // namespace

Duration ClientOptions::timeout(Stage stage) const {
  if (command_timeout) return *command_timeout;
  switch (stage) {
    case Stage::connect: return connect_timeout;
    case Stage::greeting: return greeting_timeout;
    case Stage::ehlo:
    case Stage::helo:
    case Stage::starttls:
    case Stage::auth:
    case Stage::rset: return helo_timeout;
    case Stage::mail: return mail_timeout;
    case Stage::rcpt: return rcpt_timeout;
    case Stage::data: return data_init_timeout;
    case Stage::body: return data_end_timeout;
    case Stage::quit: return quit_timeout;
  }
  return mail_timeout;
}

ClientOptions ClientOptions::from_config(const config::Config& config) {
  ClientOptions o;
  o.helo_name = config.hostname;  // [delivery] source_name: SmtpAgent, per attempt
  o.source = config.delivery.source_address;
  o.connect_timeout = config.delivery.connect_timeout;
  // [delivery] command_timeout overrides every per-stage RFC 5321 timeout
  // (tests use a short one to observe stalls; 0 = the RFC values).
  if (config.delivery.command_timeout.count() > 0) o.command_timeout = config.delivery.command_timeout;
  return o;
}

// The transport: the connected socket as a net::Stream (the same one the
// servers' sessions use), able to switch to TLS.
base::Result<std::shared_ptr<ssl::context>> verifying_context(const std::filesystem::path& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file.string(), ec);
  }
  if (ec)
    return base::make_error("cannot load the trust anchors " + (ca_file.empty() ? "of the system" : ca_file.string()) +
                            ": " + ec.message());
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

struct Connection::Impl {
  Impl(tcp::socket socket, const std::shared_ptr<ssl::context>& tls, size_t max_line)
      : stream(std::move(socket), tls ? tls : client_context(), max_line) {}
  net::Stream stream;
};

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::~Connection() = default;

bool Connection::reusable() const {
  return !broken_ && !plaintext_retry_ && messages_ < options_.max_messages_per_connection;
}

std::string Connection::tls_summary() const {
  if (!tls_active_) return "none (" + plaintext_reason_ + ")";
  std::string out = impl_->stream.tls_description();
  // A route's tls = "verify": the handshake succeeded only with a
  // certificate that chains to its trust anchors and names the host.
  if (options_.verify_certificate) return out + ", certificate verified";
  // verify_none: OpenSSL checked nothing we rely on (no trust anchors are
  // loaded), so nothing more than "encrypted" may be claimed.
  return out + ", certificate not verified";
}

void Connection::mark_plaintext_retry() {
  plaintext_retry_ = true;
  plaintext_reason_ = "plaintext retry after a failed STARTTLS handshake";
}

void Connection::close() {
  impl_->stream.close();
  broken_ = true;
}

net::awaitable<bool> Connection::write(std::string_view data, Stage stage, std::optional<Outcome>& failure) {
  const Duration timeout = stage == Stage::body ? (options_.command_timeout ? *options_.command_timeout
                                                                            : options_.data_block_timeout)
                                                : options_.timeout(stage);
  if (co_await impl_->stream.write(data, timeout)) co_return true;
  broken_ = true;
  if (impl_->stream.timed_out())
    failure = classify(Failure::timeout, peer_ + ": timeout sending " + std::string(to_string(stage)));
  else
    failure = classify(Failure::connection_lost, peer_ + ": lost connection sending " +
                                                     std::string(to_string(stage)) + ": " +
                                                     impl_->stream.last_error().message());
  co_return false;
}

net::awaitable<ServerReply> Connection::read_reply(Stage stage, std::optional<Outcome>& failure) {
  ReplyParser parser;
  // RFC 5321 §4.5.3.2: the stage's timeout bounds the whole reply.
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout(stage);
  for (;;) {
    net::Stream::Line line = co_await impl_->stream.read_line_until(deadline);
    switch (line.status) {
      case net::Stream::ReadStatus::line: break;
      case net::Stream::ReadStatus::too_long:
        broken_ = true;
        failure = classify(Failure::protocol, peer_ + ": reply line too long after " + std::string(to_string(stage)));
        co_return ServerReply{};
      case net::Stream::ReadStatus::timeout:
        broken_ = true;
        failure = classify(Failure::timeout,
                           peer_ + ": timeout waiting for the reply to " + std::string(to_string(stage)));
        co_return ServerReply{};
      case net::Stream::ReadStatus::closed:
      case net::Stream::ReadStatus::error:
        broken_ = true;
        failure = classify(Failure::connection_lost, peer_ + ": lost connection after " +
                                                         std::string(to_string(stage)) + ": " +
                                                         impl_->stream.last_error().message());
        co_return ServerReply{};
    }
    auto ps = parser.feed(line.text);
    if (ps == ReplyParser::Status::complete) {
      ServerReply reply = parser.take();
      // RFC 5321 §3.8: with a 421 the server closes the channel; nothing
      // more is read from it, and it is never reused.
      if (reply.code == 421) broken_ = true;
      co_return reply;
    }
    if (ps == ReplyParser::Status::error) {
      broken_ = true;
      failure = classify(Failure::protocol, peer_ + ": " + parser.error() + " after " +
                                                std::string(to_string(stage)));
      co_return ServerReply{};
    }
  }
}

// Callers pass string literals or named strings: GCC 12 mishandles class
// temporaries in co_await argument lists (see delivery/smtp_agent.cpp).
net::awaitable<ServerReply> Connection::command(std::string_view line, Stage stage, std::optional<Outcome>& failure) {
  std::string wire(line);
  wire += "\r\n";
  const bool written = co_await write(wire, stage, failure);
  if (!written) co_return ServerReply{};
  co_return co_await read_reply(stage, failure);
}

// EHLO, or HELO when EHLO is refused with 5xx (RFC 5321 §4.1.4, §3.2).
net::awaitable<std::optional<Outcome>> Connection::hello() {
  std::optional<Outcome> failure;
  const std::string ehlo_line = "EHLO " + options_.helo_name;
  auto ehlo = co_await command(ehlo_line, Stage::ehlo, failure);
  if (failure) co_return failure;
  if (ehlo.positive()) {
    caps_ = Capabilities::parse(ehlo);
    co_return std::nullopt;
  }
  if (!ehlo.permanent()) co_return classify(ehlo, Stage::ehlo);
  const std::string helo_line = "HELO " + options_.helo_name;
  auto helo = co_await command(helo_line, Stage::helo, failure);
  if (failure) co_return failure;
  if (!helo.positive()) co_return classify(helo, Stage::helo);
  caps_ = Capabilities{};
  co_return std::nullopt;
}

net::awaitable<Connection::Opened> Connection::open(std::string host_name, std::string ip, uint16_t port,
                                                    ClientOptions options, std::string log_id) {
  auto ex = co_await asio::this_coro::executor;
  Opened out;
  std::string peer = host_name + "[" + ip + "]:" + std::to_string(port);
  error_code ec;
  auto address = asio::ip::make_address(ip, ec);
  if (ec) {
    out.failure = classify(Failure::connect_refused, peer + ": not an IP address");
    co_return out;
  }

  // Bind to the source address of the peer's family (Postfix's
  // smtp_bind_address / smtp_bind_address6), before connect.
  tcp::socket socket(ex);
  const std::string& source = address.is_v4() ? options.source.v4 : options.source.v6;
  if (!source.empty()) {
    auto local = asio::ip::make_address(source, ec);
    if (!ec) socket.open(address.is_v4() ? tcp::v4() : tcp::v6(), ec);
    if (!ec) socket.bind(tcp::endpoint(local, 0), ec);
    if (ec) {
      log()->warn("{}: cannot bind the source address {} to connect to {}: {} (check [delivery] or [[forward]] "
                  "source_address: is the address on this host?)",
                  log_id, source, peer, ec.message());
      out.failure = classify(Failure::connect_refused, "connect to " + peer + " from " + source +
                                                           ": cannot bind the source address: " + ec.message());
      co_return out;
    }
  }

  // Connect, bounded by [delivery] connect_timeout.
  asio::steady_timer timer(ex);
  timer.expires_after(options.connect_timeout);
  auto r = co_await (socket.async_connect(tcp::endpoint(address, port), as_tuple(use_awaitable)) ||
                     timer.async_wait(as_tuple(use_awaitable)));
  if (r.index() == 1) {
    out.failure = classify(Failure::connect_timeout, "connect to " + peer + ": timed out");
    co_return out;
  }
  if (auto [cec] = std::get<0>(r); cec) {
    out.failure = classify(Failure::connect_refused, "connect to " + peer + ": " + cec.message());
    co_return out;
  }

  std::unique_ptr<Connection> conn(
      new Connection(std::make_unique<Impl>(std::move(socket), options.tls_context, options.max_line)));
  conn->peer_ = peer;
  conn->options_ = std::move(options);
  conn->log_id_ = std::move(log_id);
  const auto& opts = conn->options_;

  // RFC 5321 §3.1 / §4.5.3.2.1: wait for the 220 greeting.
  std::optional<Outcome> failure;
  auto greeting = co_await conn->read_reply(Stage::greeting, failure);
  if (failure) {
    out.failure = *failure;
    co_return out;
  }
  if (greeting.code != 220) {
    // RFC 5321 §3.1: after a 554 greeting the client should QUIT (not
    // after a 421: read_reply marked the connection broken, quit() skips it).
    out.failure = classify(greeting, Stage::greeting);
    co_await conn->quit();
    conn->close();
    co_return out;
  }

  if (auto f = co_await conn->hello()) {
    out.failure = *f;
    if (!conn->broken_) co_await conn->quit();
    conn->close();
    co_return out;
  }

  // RFC 3207: opportunistic STARTTLS. A refusal keeps the session in
  // plaintext; a failed handshake kills it (the caller decides whether the
  // address is tried again in plaintext: the TLS policy in session.hpp).
  if (!opts.starttls && conn->caps_.starttls) conn->plaintext_reason_ = "STARTTLS not used";
  if (opts.starttls && conn->caps_.starttls) {
    auto reply = co_await conn->command("STARTTLS", Stage::starttls, failure);
    if (failure) {
      out.failure = *failure;
      co_return out;
    }
    if (reply.code == 220) {
      if (conn->impl_->stream.has_buffered_input()) {
        // RFC 3207 §4.2 (and CVE-2011-0411 in reverse): bytes after the 220
        // would be read as if they came over TLS.
        out.failure = classify(Failure::protocol, peer + ": data after the STARTTLS 220 reply");
        conn->close();
        co_return out;
      }
      // SNI carries host_name unless it is an IP literal.
      const bool secured =
          co_await conn->impl_->stream.start_tls_client(host_name, opts.tls_timeout, opts.verify_certificate);
      if (!secured) {
        const std::string why =
            conn->impl_->stream.timed_out() ? "timed out" : conn->impl_->stream.last_error().message();
        out.failure = classify(Failure::tls, peer + ": TLS handshake failed: " + why);
        out.tls_failed = true;
        conn->close();
        co_return out;
      }
      conn->tls_active_ = true;
      // RFC 3207 §4.2: forget everything learnt before TLS; EHLO again.
      conn->caps_ = Capabilities{};
      if (auto f = co_await conn->hello()) {
        out.failure = *f;
        conn->close();
        co_return out;
      }
    } else if (reply.code == 421) {
      out.failure = classify(reply, Stage::starttls);
      conn->close();
      co_return out;
    } else {
      conn->plaintext_reason_ = "STARTTLS refused: " + std::to_string(reply.code);
    }
  }
  // A [[route]] that requires TLS (always, when it logs in) goes no
  // further in plaintext: 4.7.4, the next address or a retry.
  if (opts.require_tls && !conn->tls_active_) {
    out.failure = classify(Failure::security, peer + ": TLS is required for this route, but " +
                                                  conn->plaintext_reason_);
    co_await conn->quit();
    conn->close();
    co_return out;
  }
  if (opts.login) {
    if (auto f = co_await conn->authenticate(*opts.login)) {
      out.failure = *f;
      if (!conn->broken_) co_await conn->quit();
      conn->close();
      co_return out;
    }
  }
  log()->debug("{}: connected to {} tls={}", conn->log_id_, peer, conn->tls_summary());
  out.connection = std::move(conn);
  co_return out;
}

// RFC 4954: log in with the strongest mechanism both sides allow
// (protocol/client_auth.hpp). A refusal is classified at Stage::auth
// (temporary: outcome.cpp).
net::awaitable<std::optional<Outcome>> Connection::authenticate(const ClientLogin& login) {
  auto mechanism = protocol::choose_client_mechanism(caps_.auth, login.mechanisms);
  if (!mechanism) {
    auto words = [](const std::vector<std::string>& list) {
      std::string out;
      for (const auto& m : list) out += (out.empty() ? "" : " ") + m;
      return out.empty() ? std::string("none") : out;
    };
    co_return classify(Failure::security, peer_ + ": AUTH required for this route, but the server offers " +
                                              words(caps_.auth) + " and the route allows " + words(login.mechanisms));
  }
  protocol::ClientAuth exchange(*mechanism, login.user, login.password);
  std::optional<Outcome> failure;
  auto step = exchange.start();
  // At most a few rounds: LOGIN has two challenges, CRAM-MD5 one.
  for (int round = 0; round < 4 && step.kind == protocol::ClientAuth::Step::Kind::send; ++round) {
    auto reply = co_await command(step.line, Stage::auth, failure);
    if (failure) co_return failure;
    step = exchange.on_reply(reply);
    if (step.kind == protocol::ClientAuth::Step::Kind::failed) {
      log()->info("{}: {}: {} as {}: {}", log_id_, peer_, step.why, login.user, reply.text());
      co_return classify(reply, Stage::auth);
    }
  }
  if (step.kind != protocol::ClientAuth::Step::Kind::done) {
    broken_ = true;
    co_return classify(Failure::protocol, peer_ + ": AUTH " + *mechanism + " did not complete");
  }
  authenticated_as_ = login.user;
  log()->debug("{}: {}: authenticated as {} ({})", log_id_, peer_, login.user, *mechanism);
  co_return std::nullopt;
}

net::awaitable<Outcome> Connection::probe_recipient(const std::string& rcpt) {
  std::optional<Outcome> failure;
  const std::string mail_line = "MAIL FROM:<>";
  auto mail = co_await command(mail_line, Stage::mail, failure);
  if (failure) co_return *failure;
  if (!mail.positive()) co_return classify(mail, Stage::mail);
  const std::string rcpt_line = "RCPT TO:<" + rcpt + ">";
  auto reply = co_await command(rcpt_line, Stage::rcpt, failure);
  if (failure) co_return *failure;
  Outcome out = classify(reply, Stage::rcpt);
  if (out.kind == Outcome::Kind::delivered) out.detail = reply.text();
  const std::string rset_line = "RSET";
  (void)co_await command(rset_line, Stage::rset, failure);
  co_return out;
}

net::awaitable<Outcome> Connection::send(const Transaction& tx) {
  bool reset_failed = false;
  Outcome out = co_await send(tx, false, reset_failed);
  co_return out;
}

net::awaitable<std::optional<Outcome>> Connection::send_reused(const Transaction& tx) {
  bool reset_failed = false;
  Outcome out = co_await send(tx, true, reset_failed);
  if (reset_failed) co_return std::nullopt;
  co_return out;
}

net::awaitable<Outcome> Connection::send(const Transaction& tx, bool reset_first, bool& reset_failed) {
  if (broken_) co_return classify(Failure::connection_lost, peer_ + ": connection not usable");
  const mail::Message& message = *tx.message;
  // A large message's body is read from its file: once here (BODY=, BDAT's
  // count), then as it is sent.
  const bool chunked = caps_.chunking && caps_.pipelining && options_.pipelining;
  auto scanned = scan(message, chunked);
  if (!scanned) co_return classify(Failure::local, "local error: " + scanned.error().message);

  // Checks that need no round trip.
  // RFC 1870 §6.1: do not send a message larger than the announced limit.
  if (caps_.size && caps_.size_limit > 0 && message.size() > caps_.size_limit) {
    co_return not_sendable("5.3.4", peer_ + ": message size " + std::to_string(message.size()) +
                                        " exceeds the server's limit of " + std::to_string(caps_.size_limit));
  }
  // RFC 6531 §3.2: an internationalised address needs SMTPUTF8.
  bool utf8_addresses = has_8bit(tx.sender) || has_8bit(tx.recipient);
  if (utf8_addresses && !caps_.smtputf8) {
    co_return not_sendable("5.6.7", peer_ + ": the server does not support SMTPUTF8");
  }

  // RFC 6152 §3: 8-bit data only to a server that offers 8BITMIME. Not
  // converted to quoted-printable: that would break the DKIM and ARC body
  // hashes of what we forward. Refused for good instead: a forward's copy
  // diverts, submitted mail gets its DSN.
  if (scanned->eight_bit && !caps_.eightbitmime) {
    co_return not_sendable("5.6.3", peer_ + ": the message has 8-bit data and the server does not support 8BITMIME");
  }

  std::string mail = "MAIL FROM:<" + tx.sender + ">";
  if (caps_.size) mail += " SIZE=" + std::to_string(message.size());  // RFC 1870 §6
  if (caps_.eightbitmime && scanned->eight_bit) mail += " BODY=8BITMIME";  // RFC 6152 §3
  if (caps_.smtputf8 && (tx.smtputf8 || utf8_addresses)) mail += " SMTPUTF8";  // RFC 6531 §3.4
  std::string rcpt = "RCPT TO:<" + tx.recipient + ">";
  if (chunked) {
    Outcome outcome = co_await send_chunked(tx, mail, rcpt, scanned->bdat_size, reset_first, reset_failed);
    co_return outcome;
  }

  std::optional<Outcome> failure;
  ServerReply mail_reply, rcpt_reply, data_reply;
  if (caps_.pipelining && options_.pipelining) {
    // RFC 2920 §3.1: RSET (on a reused connection), MAIL, RCPT and DATA may
    // go in one group; the replies come back in order.
    const std::string group = (reset_first ? "RSET\r\n" : "") + mail + "\r\n" + rcpt + "\r\nDATA\r\n";
    std::optional<Outcome> group_failure = co_await start_group(group, Stage::mail, reset_first, reset_failed);
    if (group_failure) co_return *group_failure;
    mail_reply = co_await read_reply(Stage::mail, failure);
    if (failure) co_return *failure;
    if (mail_reply.code == 421) co_return classify(mail_reply, Stage::mail);
    rcpt_reply = co_await read_reply(Stage::rcpt, failure);
    if (failure) co_return *failure;
    // A 421 closes the connection, so no DATA reply follows: the 421
    // (Gmail's rate limit, 4.7.28) is the outcome, not the end of file.
    if (rcpt_reply.code == 421) co_return classify(rcpt_reply, Stage::rcpt);
    data_reply = co_await read_reply(Stage::data, failure);
    if (failure) {
      // The refusal already read says more than the end of file after it.
      if (!mail_reply.positive() || !rcpt_reply.positive()) co_return refused_transaction(mail_reply, rcpt_reply);
      co_return *failure;
    }
    if (!mail_reply.positive() || !rcpt_reply.positive()) {
      if (data_reply.code == 354) {
        // RFC 2920 §3.1: a server that accepted DATA without a valid
        // recipient gets an empty message; its reply is ignored.
        const bool ended = co_await write(".\r\n", Stage::body, failure);
        if (!ended) co_return *failure;
        co_await read_reply(Stage::body, failure);
      }
      co_return refused_transaction(mail_reply, rcpt_reply);
    }
  } else {
    if (reset_first) {
      const bool reset_ok = co_await reset();
      if (!reset_ok) {
        reset_failed = true;
        co_return classify(Failure::connection_lost, peer_ + ": RSET failed");
      }
    }
    mail_reply = co_await command(mail, Stage::mail, failure);
    if (failure) co_return *failure;
    if (!mail_reply.positive()) co_return classify(mail_reply, Stage::mail);
    rcpt_reply = co_await command(rcpt, Stage::rcpt, failure);
    if (failure) co_return *failure;
    if (!rcpt_reply.positive()) co_return classify(rcpt_reply, Stage::rcpt);
    data_reply = co_await command("DATA", Stage::data, failure);
    if (failure) co_return *failure;
  }
  if (data_reply.code != 354) {
    if (data_reply.positive()) {
      broken_ = true;  // out of sync: a 2xx where 354 belongs
      co_return classify(Failure::protocol, peer_ + ": unexpected reply to DATA: " + data_reply.text());
    }
    co_return classify(data_reply, Stage::data);
  }

  // RFC 5321 §4.5.2 / §4.5.3.2.5: the dot-stuffed message in blocks, each
  // write bounded by the data block timeout; then §4.5.3.2.6 for the reply.
  const bool payload_written = co_await write_blocks(message, WireEncoder::Mode::dot_stuffed, failure);
  if (!payload_written) co_return *failure;
  auto final_reply = co_await read_reply(Stage::body, failure);
  if (failure) co_return *failure;
  ++messages_;
  co_return classify(final_reply, Stage::body);
}

// Message data (DATA's dot-stuffed payload or a BDAT chunk) in kBlock
// writes, each bounded by the data block timeout (RFC 5321 §4.5.3.2.5),
// encoded block by block: the message is never copied whole.
net::awaitable<bool> Connection::write_blocks(const mail::Message& message, WireEncoder::Mode mode,
                                              std::optional<Outcome>& failure) {
  WireEncoder encoder(mode);
  mail::MessageCursor cursor(message);
  std::string block;
  block.reserve(2 * kBlock + 8);
  std::string_view piece;
  for (;;) {
    auto more = cursor.next(piece, kBlock);
    if (!more) {
      // Mid-payload: the connection cannot be used for another message.
      broken_ = true;
      failure = classify(Failure::local, "local error: " + more.error().message);
      co_return false;
    }
    block.clear();
    if (*more) {
      encoder.add(piece, block);
    } else {
      encoder.finish(block);
    }
    if (!block.empty()) {
      const bool written = co_await write(block, Stage::body, failure);
      if (!written) co_return false;
    }
    if (!*more) co_return true;
  }
}

// RFC 2920 §3.1: write a pipelined group and, on a reused connection, read
// the reply to the RSET that leads it. A failed write, no reply or a 421
// means the idle connection died or is closing: nothing after the RSET took
// effect (reset_failed: open a new one). Any other refusal of the RSET
// comes from a server that is alive and goes on with the commands behind
// it, which may carry the whole message (BDAT LAST): their replies decide,
// as for any transaction, and the connection is not reused. Sending the
// message again on a new connection could deliver it twice. nullopt: go on
// reading the group's other replies.
net::awaitable<std::optional<Outcome>> Connection::start_group(const std::string& group, Stage stage,
                                                               bool reset_first, bool& reset_failed) {
  std::optional<Outcome> failure;
  const bool written = co_await write(group, stage, failure);
  if (!written) {
    if (reset_first) {
      broken_ = true;
      reset_failed = true;
    }
    co_return failure;
  }
  if (reset_first) {
    ServerReply rset_reply = co_await read_reply(Stage::rset, failure);
    if (failure || rset_reply.code == 421) {
      broken_ = true;
      reset_failed = true;
      co_return failure ? failure : classify(rset_reply, Stage::rset);
    }
    if (!rset_reply.positive()) {
      log()->info("{}: RSET refused ({}); reading the replies to the commands behind it", peer_,
                  base::log_printable(rset_reply.text()));
      broken_ = true;  // in a state we do not know: not reused
    }
  }
  co_return std::nullopt;
}

// RFC 3030 with RFC 2920: [RSET,] MAIL, RCPT and "BDAT <n> LAST" + the
// message in one group (a large message after the MAIL/RCPT replies); the
// replies come back in order, the last one is the final answer for the
// message. A server must read a chunk even when it refuses it (RFC 3030
// §2), so a refused recipient leaves the connection in step.
net::awaitable<Outcome> Connection::send_chunked(const Transaction& tx, const std::string& mail,
                                                 const std::string& rcpt, uint64_t chunk_size, bool reset_first,
                                                 bool& reset_failed) {
  const std::string bdat = "BDAT " + std::to_string(chunk_size) + " LAST\r\n";
  // A small message (in memory) goes in the pipelined group itself.
  const bool with_group = chunk_size <= kPipelinedChunk && !tx.message->body;
  std::string group = (reset_first ? "RSET\r\n" : "") + mail + "\r\n" + rcpt + "\r\n";
  if (with_group) group += bdat + crlf_lines(tx.message->text);

  const Stage group_stage = with_group ? Stage::body : Stage::mail;
  std::optional<Outcome> group_failure = co_await start_group(group, group_stage, reset_first, reset_failed);
  if (group_failure) co_return *group_failure;
  std::optional<Outcome> failure;
  ServerReply mail_reply = co_await read_reply(Stage::mail, failure);
  if (failure) co_return *failure;
  if (mail_reply.code == 421) co_return classify(mail_reply, Stage::mail);
  ServerReply rcpt_reply = co_await read_reply(Stage::rcpt, failure);
  if (failure) co_return *failure;
  if (rcpt_reply.code == 421) co_return classify(rcpt_reply, Stage::rcpt);  // no BDAT reply follows
  const bool accepted = mail_reply.positive() && rcpt_reply.positive();
  if (!with_group) {
    if (!accepted) co_return refused_transaction(mail_reply, rcpt_reply);
    const bool header_written = co_await write(bdat, Stage::body, failure);
    if (!header_written) co_return *failure;
    const bool payload_written = co_await write_blocks(*tx.message, WireEncoder::Mode::crlf_lines, failure);
    if (!payload_written) co_return *failure;
  }
  ServerReply final_reply = co_await read_reply(Stage::body, failure);
  if (failure) {
    // The refusal already read says more than the end of file after it.
    if (!accepted) co_return refused_transaction(mail_reply, rcpt_reply);
    co_return *failure;
  }
  if (!accepted) {
    // The chunk's own refusal ("no valid recipients") says nothing new.
    co_return refused_transaction(mail_reply, rcpt_reply);
  }
  ++messages_;
  co_return classify(final_reply, Stage::body);
}

net::awaitable<bool> Connection::reset() {
  if (broken_) co_return false;
  std::optional<Outcome> failure;
  auto reply = co_await command("RSET", Stage::rset, failure);
  if (failure || !reply.positive()) {
    broken_ = true;
    co_return false;
  }
  co_return true;
}

net::awaitable<void> Connection::quit() {
  if (!broken_) {
    std::optional<Outcome> failure;
    co_await command("QUIT", Stage::quit, failure);
  }
  close();
}

// ---------------------------------------------------------------------------
// ConnectionPool

ConnectionPool::~ConnectionPool() { close_all(); }

std::unique_ptr<Connection> ConnectionPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  Entry e = std::move(it->second.back());
  it->second.pop_back();
  if (it->second.empty()) idle_.erase(it);
  e.timer->cancel();
  return std::move(e.connection);
}

void ConnectionPool::put(const std::string& key, std::unique_ptr<Connection> connection) {
  if (!connection) return;
  if (!connection->reusable()) {
    quit_later(std::move(connection));
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(executor_);
  timer->expires_after(options_.idle_timeout);
  idle_[key].push_back(Entry{std::move(connection), timer});
  // The reaper: when the idle time passes untouched, QUIT and close. A
  // cancelled timer means the connection was taken (or the pool is going).
  std::weak_ptr<int> alive = alive_;
  asio::co_spawn(
      executor_,
      [this, key, timer, alive]() -> net::awaitable<void> {
        auto [ec] = co_await timer->async_wait(as_tuple(use_awaitable));
        if (ec || alive.expired()) co_return;
        auto it = idle_.find(key);
        if (it == idle_.end()) co_return;
        auto& list = it->second;
        for (size_t i = 0; i < list.size(); ++i) {
          if (list[i].timer != timer) continue;
          std::unique_ptr<Connection> conn = std::move(list[i].connection);
          list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
          if (list.empty()) idle_.erase(it);
          log()->debug("closing idle connection to {}", conn->peer());
          co_await conn->quit();
          co_return;
        }
      },
      [](const std::exception_ptr& e) {
        if (e) log()->error("bug: idle connection reaper threw");
      });
}

void ConnectionPool::quit_later(std::unique_ptr<Connection> connection) {
  std::shared_ptr<Connection> conn(std::move(connection));
  asio::co_spawn(
      executor_, [conn]() -> net::awaitable<void> { co_await conn->quit(); },
      [](const std::exception_ptr& e) {
        if (e) log()->error("bug: QUIT coroutine threw");
      });
}

void ConnectionPool::close_all() {
  for (auto& [key, list] : idle_)
    for (auto& e : list) {
      e.timer->cancel();
      if (e.connection) e.connection->close();
    }
  idle_.clear();
}

size_t ConnectionPool::idle() const {
  size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

// ---------------------------------------------------------------------------
// The route loop.

net::awaitable<Outcome> deliver_via_route(ConnectionPool& pool, const std::vector<RouteHost>& route,
                                          const RouteContext& context, const ClientOptions& options,
                                          const Transaction& tx) {
  // RFC 5321 §5.1 and the rules of this loop, in order:
  //  * hosts in route order (MX preference, shuffled ties), each address of
  //    a host in order, before giving up;
  //  * an address that is one of our own listeners is never used (loop);
  //  * an idle pooled connection to the address is reused, RSET pipelined
  //    ahead of the transaction; a failed RSET just means "open a new
  //    one", not a host failure;
  //  * 2xx → delivered; a 5xx for the transaction (MAIL, RCPT, DATA, end of
  //    data) → permanent, no other host is asked;
  //  * 4xx, a refused/timed-out/reset connection, a TLS or protocol failure
  //    → the next address; a failed STARTTLS handshake is retried once in
  //    plaintext on the same address only when the message was attempted
  //    before (opportunistic TLS as Postfix's "may" level: session.hpp);
  //  * every address failed → temporary, with the last failure's detail.
  std::optional<Outcome> last;
  bool loop = false;
  for (const auto& host : route) {
    for (const auto& ip : host.addresses) {
      if (context.listen && context.listen->is_own(ip, context.port)) {
        log()->warn("{}: {}[{}]:{} is one of our own listeners: not used (mail loop)", tx.log_id, host.name, ip,
                    context.port);
        loop = true;
        continue;
      }
      std::string key = endpoint_key(ip, context.port, options);
      // A pooled connection first: its RSET rides in the same pipelined
      // group as the transaction (no extra round trip).
      std::unique_ptr<Connection> conn = pool.take(key);
      std::optional<Outcome> outcome;
      std::string peer;
      if (conn) {
        peer = conn->peer();
        log()->debug("{}: reusing connection to {}", tx.log_id, peer);
        outcome = co_await conn->send_reused(tx);
        if (!outcome) {
          log()->debug("{}: idle connection to {} is gone; opening a new one", tx.log_id, peer);
          conn->close();
          conn.reset();
        }
      }
      if (!outcome) {
        auto opened = co_await Connection::open(host.name, ip, context.port, options, tx.log_id);
        bool plaintext_retry = false;
        if (!opened.connection && opened.tls_failed) {
          if (!tx.plaintext_after_tls_failure || options.require_tls) {
            log()->info("{}: {} ({}); no plaintext retry {}", tx.log_id, opened.failure.detail,
                        opened.failure.status,
                        options.require_tls ? "(the route requires TLS)" : "on a message's first attempt");
            last = opened.failure;
            continue;
          }
          log()->info("{}: {}; retrying without TLS (an earlier attempt of this message failed)", tx.log_id,
                      opened.failure.detail);
          ClientOptions plain = options;
          plain.starttls = false;
          opened = co_await Connection::open(host.name, ip, context.port, plain, tx.log_id);
          plaintext_retry = true;
        }
        if (!opened.connection) {
          log()->info("{}: {} ({})", tx.log_id, opened.failure.detail, opened.failure.status);
          // A rate limit (421 4.7.28 at the greeting) is the destination's:
          // its other MX hosts are not asked, and the pause starts from it.
          if (!opened.failure.try_next_host || opened.failure.rate_limited) co_return opened.failure;
          last = opened.failure;
          continue;
        }
        conn = std::move(opened.connection);
        if (plaintext_retry) conn->mark_plaintext_retry();
        peer = conn->peer();
        outcome = co_await conn->send(tx);
      }
      const std::string tls = conn->tls_summary();
      outcome->tls = conn->tls_active();
      const std::string login = conn->authenticated_as();
      pool.put(key, std::move(conn));
      log()->info("{}: to=<{}> relay={} tls={}{} status={} ({})", tx.log_id, mail::redact(tx.recipient, tx.hidden),
                  peer, tls, login.empty() ? "" : " login=" + login, outcome->status,
                  mail::redact(outcome->detail, tx.hidden));
      if (outcome->delivered() || !outcome->try_next_host || outcome->rate_limited) co_return *outcome;
      last = *outcome;
    }
  }
  if (last) {
    last->kind = Outcome::Kind::temporary;  // RFC 5321 §5.1: all hosts failed
    co_return *last;
  }
  Outcome none = loop ? classify(Failure::loop, "mail for " + mail::domain_of(tx.recipient) + " loops back to myself")
                      : classify(Failure::unroutable, "no address to deliver to for " + mail::domain_of(tx.recipient));
  log()->info("{}: to=<{}> status={} ({})", tx.log_id, mail::redact(tx.recipient, tx.hidden), none.status,
              none.detail);
  co_return none;
}

}  // namespace hikyaku::smtp::client
