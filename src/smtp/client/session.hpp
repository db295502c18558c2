// Purpose:   The SMTP client's I/O: one outbound connection (connect,
//            greeting, EHLO/HELO, opportunistic STARTTLS, MAIL/RCPT/DATA with
//            PIPELINING when offered, RSET for reuse, QUIT), a pool of idle
//            connections per destination address, and the RFC 5321 §5.1
//            loop over the hosts and addresses of a resolved route.
// Standards: RFC 5321 §3.1 (greeting), §4.1.1 (commands), §4.5.3.2 (client
//            timeouts per stage), §5.1 (try each host and address in order),
//            §4.1.4 (RSET before reusing a session), RFC 3207 (STARTTLS),
//            RFC 7435 (opportunistic TLS: the policy below), RFC 2920
//            (PIPELINING), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531
//            (SMTPUTF8), RFC 3030 (CHUNKING: with PIPELINING too, the message
//            goes as one "BDAT <size> LAST" instead of DATA — one round trip
//            less, as Gmail offers both).
// TLS policy (RFC 7435 opportunistic TLS; docs/smtp-client.md):
//            * STARTTLS whenever the server offers it, TLS 1.2 or newer;
//            * the certificate is not authenticated (an MX certificate cannot
//              be without DANE, RFC 7672, or MTA-STS, RFC 8461 — later
//              work): a self-signed or misnamed one is used as it is, and
//              every delivery line says so ("certificate not verified",
//              RFC 7435 §3 "no misrepresentation of security");
//            * not offered or refused (454): plaintext, logged as tls=none;
//            * a failed handshake closes that connection (the peer is in an
//              unknown state) and counts as a 4.7.5 failure of the address.
//              The same address is tried again in plaintext only when the
//              message was attempted before (Transaction::
//              plaintext_after_tls_failure) — Postfix's "may" level falls
//              back to plaintext only once a message has spent
//              minimal_backoff_time in the queue — so a first attempt goes on
//              to the next MX with TLS or is deferred, and its retry gets
//              through to a server whose TLS is broken. Such a plaintext
//              connection is logged and never pooled.
//            * a [[route]] with tls = "required" (every route that logs in:
//              ClientOptions::require_tls): never plaintext — STARTTLS not
//              offered or refused is 4.7.4, a failed handshake is not retried
//              without TLS. AUTH (RFC 4954; protocol/client_auth.hpp) only
//              inside TLS; a refused login is temporary (outcome.cpp).
//            * tls = "verify" (ClientOptions::verify_certificate): the same,
//              and the certificate must chain to the route's trust anchors
//              and name its host (RFC 6125) — the one case where a
//              certificate is authenticated, and logged as "verified".
// Trust:     the peer is an untrusted host on the Internet: every reply goes
//            through ReplyParser (bounded lines and line count); nothing it
//            says is executed or echoed to third parties except as the
//            classified `detail` text.
// Concurrency: a Connection belongs to one coroutine at a time; the pool
//            and every coroutine here must run on one single-threaded
//            io_context (the app's) or one strand — nothing is locked.
// Errors:    everything ends in an Outcome value (STYLE R7: as_tuple, no
//            exceptions from I/O); a bug that throws is caught at the
//            caller's co_spawn boundary.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "mail/message.hpp"
#include "net/asio.hpp"
#include "smtp/client/outcome.hpp"
#include "smtp/client/route.hpp"
#include "smtp/protocol/server_reply.hpp"

namespace hikyaku::smtp::client {

using protocol::Capabilities;

using Duration = std::chrono::steady_clock::duration;

// A relay login (a [[route]]'s auth or [[route.account]]).
struct ClientLogin {
  std::string user;
  std::string password;                 // read from the route's password_file
  std::vector<std::string> mechanisms;  // allowed, upper case
};

struct ClientOptions {
  std::string helo_name = "localhost";  // config.hostname; source_name: delivery/smtp_agent
  // The local address to bind before connect, per family of the peer's
  // address ([delivery] / [[forward]] source_address; issue 17). A bind
  // failure (the address is not on this host) fails that address as a
  // temporary 4.4.1 and is logged as a warning.
  config::SourceAddress source;
  Duration connect_timeout = std::chrono::seconds(30);  // config.delivery.connect_timeout
  // When set, overrides every per-stage timeout below (tests use short ones).
  std::optional<Duration> command_timeout;
  // RFC 5321 §4.5.3.2 client minimums.
  Duration greeting_timeout = std::chrono::minutes(5);    // §4.5.3.2.1 initial 220
  Duration helo_timeout = std::chrono::minutes(5);        // EHLO/HELO/STARTTLS/RSET (as MAIL)
  Duration mail_timeout = std::chrono::minutes(5);        // §4.5.3.2.2
  Duration rcpt_timeout = std::chrono::minutes(5);        // §4.5.3.2.3
  Duration data_init_timeout = std::chrono::minutes(2);   // §4.5.3.2.4
  Duration data_block_timeout = std::chrono::minutes(3);  // §4.5.3.2.5 (each write)
  Duration data_end_timeout = std::chrono::minutes(10);   // §4.5.3.2.6
  Duration tls_timeout = std::chrono::minutes(2);         // handshake
  Duration quit_timeout = std::chrono::seconds(10);       // we are leaving anyway
  Duration idle_timeout = std::chrono::seconds(10);       // pooled idle connection lifetime
  unsigned max_messages_per_connection = 100;
  bool starttls = true;        // opportunistic STARTTLS when offered
  // A [[route]] with tls = "required" (or a login): no plaintext delivery,
  // no plaintext retry after a failed handshake (4.7.4 / 4.7.5 instead).
  bool require_tls = false;
  // A [[route]] with tls = "verify": the certificate must chain to
  // `tls_context`'s trust anchors (verifying_context()) and name the host
  // (or the IP literal) the route names; implies require_tls.
  bool verify_certificate = false;
  std::shared_ptr<net::ssl::context> tls_context;  // null: the opportunistic, unverified one
  std::optional<ClientLogin> login;  // AUTH after STARTTLS (RFC 4954)
  bool pipelining = true;      // use PIPELINING when offered
  size_t max_line = 8192;      // longest reply line accepted

  Duration timeout(Stage stage) const;
  static ClientOptions from_config(const config::Config& config);
};

// One message for one recipient.
struct Transaction {
  std::string sender;     // "" is the null reverse-path <>
  std::string recipient;
  std::shared_ptr<const mail::Message> message;  // CRLF lines, not dot-stuffed; a large one's body in a file
  bool smtputf8 = false;  // the original envelope used SMTPUTF8
  std::string log_id;     // queue id, for log lines
  // Addresses never to be written to logs (hidden forwards, DESIGN.md "no
  // leak"): log lines show "<hidden>" instead, in the recipient and in the
  // remote reply text (servers often echo the recipient).
  std::vector<std::string> hidden;
  // After a failed STARTTLS handshake, may the same address be tried again
  // in plaintext? Set on a retry, never on a message's first attempt (the
  // TLS policy above).
  bool plaintext_after_tls_failure = false;
};

// A client TLS context that verifies certificates against `ca_file` (PEM;
// empty: the system's trust anchors), TLS 1.2 or newer.
base::Result<std::shared_ptr<net::ssl::context>> verifying_context(const std::filesystem::path& ca_file);

class Connection {
 public:
  struct Opened;
  // Connect to ip:port (`host_name` for SNI and logs) from options.source
  // (when set for that family), read the greeting,
  // EHLO (HELO when EHLO gets a 5xx), STARTTLS when offered, EHLO again.
  // On failure the Outcome says why and whether to try the next host.
  static net::awaitable<Opened> open(std::string host_name, std::string ip, uint16_t port,
                                     ClientOptions options, std::string log_id);
  ~Connection();

  // MAIL, RCPT, DATA, the message, "." (or MAIL, RCPT, BDAT LAST and the
  // message, when CHUNKING and PIPELINING are offered). Returns the
  // classified outcome of the first failing stage or of the final reply.
  net::awaitable<Outcome> send(const Transaction& tx);
  // The same on an idle connection taken from the pool: RSET first (RFC
  // 5321 §4.1.1.5), pipelined with MAIL/RCPT/DATA when PIPELINING is
  // offered (RFC 2920 §3.1). nullopt: the RSET failed, the connection is
  // unusable and nothing of the transaction took effect (open a new one).
  net::awaitable<std::optional<Outcome>> send_reused(const Transaction& tx);
  // A gateway's recipient check (issue 14): MAIL FROM:<>, RCPT TO:<rcpt>,
  // RSET — nothing is sent. The outcome classifies the RCPT reply (or the
  // MAIL refusal, or the failure).
  net::awaitable<Outcome> probe_recipient(const std::string& rcpt);
  // RSET alone; false when the connection is no longer usable.
  net::awaitable<bool> reset();
  // QUIT and close (RFC 5321 §4.1.1.10); errors are ignored.
  net::awaitable<void> quit();
  void close();

  bool reusable() const;
  bool tls_active() const { return tls_active_; }
  // What protects this connection, for log lines: "TLSv1.3 <cipher>,
  // certificate not verified" or "none (<why>)" (RFC 7435 §3: never shown
  // as more than it is).
  std::string tls_summary() const;
  // This connection is the plaintext retry after a failed STARTTLS
  // handshake: said in tls_summary() and never reused for another message.
  void mark_plaintext_retry();
  const Capabilities& capabilities() const { return caps_; }
  const std::string& peer() const { return peer_; }  // "host[ip]:port"
  const std::string& authenticated_as() const { return authenticated_as_; }  // relay login, or ""
  unsigned messages() const { return messages_; }

  struct Impl;

 private:
  explicit Connection(std::unique_ptr<Impl> impl);
  net::awaitable<Outcome> send(const Transaction& tx, bool reset_first, bool& reset_failed);
  net::awaitable<std::optional<Outcome>> start_group(const std::string& group, Stage stage, bool reset_first,
                                                     bool& reset_failed);
  // `chunk_size`: the message's CRLF-line encoding size (BDAT's count).
  net::awaitable<Outcome> send_chunked(const Transaction& tx, const std::string& mail, const std::string& rcpt,
                                       uint64_t chunk_size, bool reset_first, bool& reset_failed);
  net::awaitable<ServerReply> command(std::string_view line, Stage stage, std::optional<Outcome>& failure);
  net::awaitable<ServerReply> read_reply(Stage stage, std::optional<Outcome>& failure);
  net::awaitable<bool> write(std::string_view data, Stage stage, std::optional<Outcome>& failure);
  net::awaitable<bool> write_blocks(const mail::Message& message, protocol::WireEncoder::Mode mode,
                                    std::optional<Outcome>& failure);
  net::awaitable<std::optional<Outcome>> hello();
  net::awaitable<std::optional<Outcome>> authenticate(const ClientLogin& login);

  std::unique_ptr<Impl> impl_;
  Capabilities caps_;
  std::string peer_;
  bool tls_active_ = false;
  std::string plaintext_reason_ = "STARTTLS not offered";  // when !tls_active_
  bool plaintext_retry_ = false;
  std::string authenticated_as_;  // the relay login, "" without AUTH
  bool broken_ = false;
  unsigned messages_ = 0;
  ClientOptions options_;
  std::string log_id_;
};

struct Connection::Opened {
  std::unique_ptr<Connection> connection;  // null on failure
  Outcome failure;
  bool tls_failed = false;  // the STARTTLS handshake failed (see the TLS policy)
};

// Idle connections per destination "ip:port", each closed with QUIT after
// options.idle_timeout. Lives on the io_context's thread only.
class ConnectionPool {
 public:
  ConnectionPool(net::asio::any_io_executor executor, const ClientOptions& options)
      : executor_(std::move(executor)), options_(options) {}
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // An idle connection to `key`, or null.
  std::unique_ptr<Connection> take(const std::string& key);
  // Keep `connection` for reuse (if reusable), else QUIT it.
  void put(const std::string& key, std::unique_ptr<Connection> connection);
  // Drop every idle connection (shutdown).
  void close_all();
  size_t idle() const;

 private:
  struct Entry {
    std::unique_ptr<Connection> connection;
    std::shared_ptr<net::asio::steady_timer> timer;
  };
  void quit_later(std::unique_ptr<Connection> connection);

  net::asio::any_io_executor executor_;
  const ClientOptions& options_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // reapers hold a weak_ptr
  std::map<std::string, std::vector<Entry>> idle_;
};

// What the route loop needs to know besides the route.
struct RouteContext {
  uint16_t port = 25;                       // config.delivery.smtp_port
  const config::Listen* listen = nullptr;   // loop check (own listeners)
};

// RFC 5321 §5.1: try every host of `route` and each of its addresses in
// order, reusing pooled connections, until one gives a final answer: 2xx
// (delivered) or a 5xx for the transaction (permanent). 4xx and
// connection failures move on; when every address failed the outcome is
// temporary with the last failure's detail. An address that is one of our
// own listeners is skipped; if nothing else remains: 5.4.6 routing loop.
net::awaitable<Outcome> deliver_via_route(ConnectionPool& pool, const std::vector<RouteHost>& route,
                                          const RouteContext& context, const ClientOptions& options,
                                          const Transaction& tx);

}  // namespace hikyaku::smtp::client
