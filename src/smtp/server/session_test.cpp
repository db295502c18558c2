// Session tests over a real loopback socket: the server runs run_session on
// an io_context thread; the test drives it with a blocking client through a
// Transcript helper (send / expect "250 2.1.5 *"), OpenSMTPD smtpscript style
// (STYLE R13). Case names carry the RFC section.
#include "smtp/server/session.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "base/strings.hpp"
#include "login/mailbox_login.hpp"
#include "sasl/credential_store.hpp"
#include "smtp/protocol/replies.hpp"
#include "tls/context.hpp"

namespace hikyaku::smtp::server {
namespace {

namespace asio = net::asio;
namespace ssl = net::ssl;
using net::tcp;

// A MessageSink that keeps messages in memory (or fails on demand). Its
// recipients: alice@ and bob@example.test; other example.test users are
// unknown, other domains are relaying; an "SRS0=" local part is valid iff it
// ends in "=ok" (the shape of intake's answers).
class FakeSink final : public MessageSink {
 public:
  // Login "alice" may send as alice@example.test only.
  std::optional<mail::Reply> check_sender(const std::optional<mail::Address>& sender,
                                          std::string_view login) override {
    if (!sender || (login == "alice" && sender->str() == "alice@example.test")) return std::nullopt;
    return protocol::reply::sender_not_owned();
  }
  std::optional<mail::Reply> check_recipient(const mail::Address& rcpt, bool authenticated) override {
    if (rcpt.local.starts_with("SRS0=")) {
      if (rcpt.local.ends_with("=ok")) return std::nullopt;
      return mail::Reply(550, "5.1.1", "Invalid SRS address");
    }
    if (rcpt.domain != "example.test") return authenticated ? std::nullopt : std::optional(protocol::reply::relay_denied());
    const std::string local = base::to_lower(rcpt.local);
    if (local == "alice" || local == "bob" || local == "postmaster" || local == "δοκιμή") return std::nullopt;
    return protocol::reply::unknown_user();
  }
  std::string log_text(std::string_view text) const override { return std::string(text); }
  // Refuses every message with `refusal_` when set; a message taken is
  // committed through a gate (gate_commits) so a test can hold it between
  // its final dot and its 250, and fails its commit when set_fail(true).
  base::Result<std::pair<base::UniqueFd, std::filesystem::path>> body_file() override {
    auto fd = base::open_temporary(std::filesystem::temp_directory_path());
    if (!fd) return fd.error();
    return std::pair{std::move(fd).value(), std::filesystem::temp_directory_path()};
  }
  // The message is kept whole (a spilled body read back from its file);
  // spilled(i) says whether its body was in a file.
  void admit(mail::Envelope envelope, mail::Message received, Admitted done) override {
    std::string message;
    auto read = mail::for_each_piece(received, [&](std::string_view piece) {
      message += piece;
      return base::Status{};
    });
    if (!read) {
      done(read.error());
      return;
    }
    std::unique_lock lock(mu_);
    spilled_.push_back(received.body.has_value());
    ++admit_calls_;
    cv_.notify_all();
    if (refusal_) {
      auto r = *refusal_;
      lock.unlock();
      done(Admission::refused(std::move(r)));
      return;
    }
    lock.unlock();
    done(Admission{std::nullopt, std::make_unique<GatedCommit>(*this, std::move(envelope), std::move(message))});
  }
  void gate_commits(bool closed) {
    std::lock_guard lock(mu_);
    gate_closed_ = closed;
    cv_.notify_all();
  }
  // Wait (at most 5 s) until admit() was called that often.
  bool wait_admitted(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return admit_calls_ >= n; });
  }
  class GatedCommit final : public PendingMessage {
   public:
    GatedCommit(FakeSink& sink, mail::Envelope envelope, std::string message)
        : sink_(sink), envelope_(std::move(envelope)), message_(std::move(message)) {}
    base::Result<std::string> commit() override {
      std::unique_lock lock(sink_.mu_);
      sink_.cv_.wait_for(lock, std::chrono::seconds(5), [&] { return !sink_.gate_closed_; });
      if (sink_.fail_)
        return base::Error{"write spool/tmp/x (test): " + std::string(std::strerror(sink_.fail_errno_)),
                           sink_.fail_errno_};
      sink_.envelopes_.push_back(std::move(envelope_));
      sink_.messages_.push_back(std::move(message_));
      return "Q" + std::to_string(sink_.messages_.size());
    }

   private:
    FakeSink& sink_;
    mail::Envelope envelope_;
    std::string message_;
  };
  void set_refusal(std::optional<mail::Reply> r) {
    std::lock_guard lock(mu_);
    refusal_ = std::move(r);
  }
  // Fail every store with `error_number` as the failed call's errno.
  void set_fail(bool f, int error_number = EIO) {
    std::lock_guard lock(mu_);
    fail_ = f;
    fail_errno_ = error_number;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return messages_.size();
  }
  std::string message(size_t i) {
    std::lock_guard lock(mu_);
    return messages_.at(i);
  }
  mail::Envelope envelope(size_t i) {
    std::lock_guard lock(mu_);
    return envelopes_.at(i);
  }
  bool spilled(size_t i) {
    std::lock_guard lock(mu_);
    return spilled_.at(i);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t admit_calls_ = 0;
  std::vector<bool> spilled_;  // per admit() call
  bool gate_closed_ = false;
  bool fail_ = false;
  int fail_errno_ = EIO;
  std::optional<mail::Reply> refusal_;
  std::vector<mail::Envelope> envelopes_;
  std::vector<std::string> messages_;
};

// '*' matches any run, '?' one character.
bool glob(std::string_view pat, std::string_view s) {
  if (pat.empty()) return s.empty();
  if (pat[0] == '*') {
    for (size_t i = 0; i <= s.size(); ++i)
      if (glob(pat.substr(1), s.substr(i))) return true;
    return false;
  }
  if (s.empty()) return false;
  if (pat[0] != '?' && pat[0] != s[0]) return false;
  return glob(pat.substr(1), s.substr(1));
}

// A blocking SMTP client for scripted conversations.
class Transcript {
 public:
  explicit Transcript(uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{5, 0};  // no test may hang: a read gives up after 5 s
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  void send_raw(std::string_view bytes) {
    if (tls_) asio::write(*tls_, asio::buffer(bytes));
    else asio::write(socket_, asio::buffer(bytes));
  }
  void send(std::string_view line) { send_raw(std::string(line) + "\r\n"); }

  // One complete reply; lines joined with '\n', without CRLF. "" on EOF.
  std::string reply() {
    std::string all;
    for (;;) {
      std::string line = read_line();
      if (line.empty()) return all;
      if (!all.empty()) all += '\n';
      all += line;
      if (line.size() < 4 || line[3] != '-') return all;
    }
  }
  // Read one reply and match its last line against `pattern`.
  void expect(std::string_view pattern, std::string_view note = "") {
    std::string r = reply();
    std::string last = r.substr(r.rfind('\n') == std::string::npos ? 0 : r.rfind('\n') + 1);
    EXPECT_TRUE(glob(pattern, last)) << note << " got \"" << r << "\", want \"" << pattern << "\"";
  }
  bool closed() {
    char c;
    boost::system::error_code ec;
    if (tls_) tls_->read_some(asio::buffer(&c, 1), ec);
    else socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == ssl::error::stream_truncated ||
           ec == asio::error::connection_reset;
  }
  void handshake() {
    tls_ctx_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    tls_ctx_->set_verify_mode(ssl::verify_none);
    tls_ = std::make_unique<ssl::stream<tcp::socket&>>(socket_, *tls_ctx_);
    tls_->handshake(ssl::stream_base::client);
  }

 private:
  std::string read_line() {
    for (;;) {
      auto crlf = buf_.find("\r\n");
      if (crlf != std::string::npos) {
        std::string line = buf_.substr(0, crlf);
        buf_.erase(0, crlf + 2);
        return line;
      }
      char tmp[4096];
      boost::system::error_code ec;
      size_t n = tls_ ? tls_->read_some(asio::buffer(tmp), ec) : socket_.read_some(asio::buffer(tmp), ec);
      if (ec) return "";
      buf_.append(tmp, n);
    }
  }
  asio::io_context io_;
  tcp::socket socket_;
  std::unique_ptr<ssl::context> tls_ctx_;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls_;
  std::string buf_;
};

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() {
    config_.hostname = "mx.example.test";
    config_.domains.push_back(config::Domain{"example.test", "", {}, true});
    config_.addresses.push_back({"alice@example.test", {{mail::Target::Kind::mailbox, "alice"}}});
    config_.addresses.push_back({"bob@example.test", {{mail::Target::Kind::mailbox, "bob"}}});
    config_.limits.message_size = 1024 * 1024;
  }
  ~SessionTest() override {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    workers_.join();
    if (logins_) logins_->stop();  // before io_ goes: a verification posts back to it
    if (!scratch_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(scratch_, ec);
    }
  }
  // A directory of this test's own (certificate, credentials), removed with
  // the fixture.
  const std::filesystem::path& scratch() {
    if (scratch_.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "hikyaku-smtp-test.XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
      scratch_ = tmpl;
    }
    return scratch_;
  }

  // Start accepting: every connection runs run_session with `role`.
  void start(Role role = Role::mx, net::Refusal refusal = net::Refusal::none) {
    ctx_ = std::make_unique<ServerContext>(
        ServerContext{Settings::from(config_), sink_, tls_, workers_, logins_.get()});
    ctx_->verifier = verifier_;
    acceptor_ = std::make_unique<tcp::acceptor>(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = acceptor_->local_endpoint().port();
    asio::co_spawn(io_, accept_loop(role, refusal), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  net::awaitable<void> accept_loop(Role role, net::Refusal refusal) {
    for (;;) {
      auto [ec, socket] = co_await acceptor_->async_accept(asio::as_tuple(net::use_awaitable));
      if (ec) co_return;
      net::Admission admission{nullptr, refusal};
      if (refusal == net::Refusal::none)
        admission.lease = std::make_unique<net::ConnectionLimiter::Lease>(nullptr, "127.0.0.1");
      asio::co_spawn(io_, run_session(std::move(socket), std::move(admission), *ctx_, role),
                     [](const std::exception_ptr& e) {
                       if (e) ADD_FAILURE() << "session threw";
                     });
    }
  }
  void enable_tls() {
    const auto& dir = scratch();
    ASSERT_TRUE(tls::ensure_self_signed(dir / "cert.pem", dir / "key.pem", "mx.example.test").ok());
    auto ctx = tls::make_server_context(dir / "cert.pem", dir / "key.pem");
    ASSERT_TRUE(ctx.ok());
    tls_ = ctx.value();
  }
  // Mailbox "alice" with password "secret" (AUTH), failures answered at once.
  void add_login() {
    config_.mailboxes.push_back(config::Mailbox{"alice", {"alice@example.test"}});
    config_.auth.failure_delay = std::chrono::seconds(0);
    const auto& dir = scratch();
    credentials_ = std::make_unique<sasl::CredentialStore>(dir / "users");
    ASSERT_TRUE(credentials_->set_password("alice", "secret").ok());
    live_config_ = std::make_unique<base::Live<config::Config>>(std::make_shared<const config::Config>(config_));
    logins_ = std::make_unique<login::MailboxLogins>(*live_config_, *credentials_,
                                                     login::MailboxLogins::Settings::from(config_));
  }
  // 465: the TLS handshake, the greeting, EHLO.
  std::unique_ptr<Transcript> connect_submissions() {
    auto t = std::make_unique<Transcript>(port_);
    t->handshake();
    t->expect("220 mx.example.test ESMTP hikyaku");
    t->send("EHLO client.example");
    t->expect("250 HELP");
    return t;
  }
  // Connect, read the greeting, EHLO.
  std::unique_ptr<Transcript> connect_ehlo() {
    auto t = std::make_unique<Transcript>(port_);
    t->expect("220 mx.example.test ESMTP hikyaku");
    t->send("EHLO client.example");
    t->expect("250 HELP");
    return t;
  }

  config::Config config_;
  std::filesystem::path scratch_;  // scratch(): made on first use
  std::unique_ptr<sasl::CredentialStore> credentials_;
  std::unique_ptr<base::Live<config::Config>> live_config_;
  std::unique_ptr<login::MailboxLogins> logins_;
  FakeSink sink_;
  std::shared_ptr<ssl::context> tls_;
  asio::thread_pool workers_{2};  // two: a held commit must not stall another admission
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::unique_ptr<ServerContext> ctx_;
  RecipientVerifier* verifier_ = nullptr;  // set before start()
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::thread thread_;
  uint16_t port_ = 0;
};

TEST_F(SessionTest, GreetingAndQuit_RFC5321_4_3_1) {
  start();
  Transcript t(port_);
  t.expect("220 mx.example.test ESMTP hikyaku");
  t.send("QUIT");
  t.expect("221 2.0.0 *");
  EXPECT_TRUE(t.closed());
}

TEST_F(SessionTest, RefusedLeaseGets421_RFC5321_3_8) {
  start(Role::mx, net::Refusal::limit);
  Transcript t(port_);
  t.expect("421 4.7.0 Too many connections*");
  EXPECT_TRUE(t.closed());
}

// Issue 13: [access] denies the client: 554 as the greeting, then close.
TEST_F(SessionTest, AccessDeniedGets554Greeting_RFC5321_3_1) {
  start(Role::mx, net::Refusal::access);
  Transcript t(port_);
  t.expect("554 5.7.1 Access denied");
  EXPECT_TRUE(t.closed());
}

// On 465 a denied client is closed before TLS and without a reply.
TEST_F(SessionTest, AccessDeniedOn465IsClosedWithoutAWord) {
  enable_tls();
  start(Role::submissions, net::Refusal::access);
  Transcript t(port_);
  EXPECT_TRUE(t.closed()) << "no byte, then end of stream";
}

TEST_F(SessionTest, EhloListsExtensions_RFC5321_4_1_1_1) {
  enable_tls();
  start();
  Transcript t(port_);
  t.expect("220 *");
  t.send("EHLO client.example");
  std::string r = t.reply();
  for (const char* want : {"250-mx.example.test", "250-PIPELINING", "250-SIZE 1048576", "250-8BITMIME",
                           "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES", "250-STARTTLS", "250 HELP"})
    EXPECT_NE(r.find(want), std::string::npos) << "missing " << want << " in " << r;
}

TEST_F(SessionTest, NoStartTlsWithoutContext_RFC3207_4) {
  start();
  Transcript t(port_);
  t.expect("220 *");
  t.send("EHLO client.example");
  EXPECT_EQ(t.reply().find("STARTTLS"), std::string::npos);
  t.send("STARTTLS");
  t.expect("454 4.7.0 *");
}

TEST_F(SessionTest, AcceptsAndStoresMessage_RFC5321_3_3) {
  start();
  auto t = connect_ehlo();
  t->send("MAIL FROM:<sender@remote.example> BODY=8BITMIME");
  t->expect("250 2.1.0 *");
  t->send("RCPT TO:<Alice@Example.Test>");
  t->expect("250 2.1.5 *");
  t->send("DATA");
  t->expect("354 *");
  t->send_raw("Subject: hi\r\n\r\n..leading dot\r\nh\xc3\xa9llo\r\n.\r\n");
  t->expect("250 2.0.0 Ok: queued as Q1");
  ASSERT_EQ(sink_.count(), 1u);
  auto env = sink_.envelope(0);
  EXPECT_EQ(env.sender_str(), "sender@remote.example");
  ASSERT_EQ(env.recipients.size(), 1u);
  EXPECT_EQ(env.recipients[0].str(), "Alice@example.test");
  EXPECT_TRUE(env.body_8bit);
  EXPECT_EQ(env.helo, "client.example");
  EXPECT_EQ(env.client_ip, "127.0.0.1");
  auto msg = sink_.message(0);
  // RFC 5321 §4.4: our Received first, then the message, dot-unstuffed.
  EXPECT_TRUE(msg.starts_with("Received: from client.example ([127.0.0.1])\r\n\tby mx.example.test (hikyaku) with ESMTP id "))
      << msg;
  EXPECT_NE(msg.find("\tfor <Alice@example.test>; "), std::string::npos) << msg;
  EXPECT_TRUE(msg.ends_with("\r\nSubject: hi\r\n\r\n.leading dot\r\nh\xc3\xa9llo\r\n")) << msg;
  t->send("QUIT");
  t->expect("221 2.0.0 *");
}

// A message held at its commit (a slow disk) stalls neither the event loop
// nor another session's message: admit() runs on the loop, commit() on the
// blocking pool.
TEST_F(SessionTest, AHeldCommitStallsNoOtherSession_DESIGN_threads) {
  sink_.gate_commits(true);
  start();
  auto send_message = [](Transcript& t, std::string_view subject) {
    t.send("MAIL FROM:<sender@remote.example>");
    t.expect("250 2.1.0 *");
    t.send("RCPT TO:<alice@example.test>");
    t.expect("250 2.1.5 *");
    t.send("DATA");
    t.expect("354 *");
    t.send_raw("Subject: " + std::string(subject) + "\r\n\r\nx\r\n.\r\n");
  };
  auto a = connect_ehlo();
  send_message(*a, "first");
  ASSERT_TRUE(sink_.wait_admitted(1));
  auto b = connect_ehlo();  // the loop still answers
  send_message(*b, "second");
  ASSERT_TRUE(sink_.wait_admitted(2)) << "the first held at its commit does not stop the second's admission";
  EXPECT_EQ(sink_.count(), 0u);
  sink_.gate_commits(false);
  a->expect("250 2.0.0 Ok: queued as *");
  b->expect("250 2.0.0 Ok: queued as *");
  EXPECT_EQ(sink_.count(), 2u);
}

TEST_F(SessionTest, HeloHasNoEnhancedCodes_RFC2034_3) {
  start();
  Transcript t(port_);
  t.expect("220 *");
  t.send("HELO client.example");
  t.expect("250 mx.example.test");
  t.send("MAIL FROM:<a@remote.example>");
  t.expect("250 Sender ok");
  t.send("RCPT TO:<nobody@example.test>");
  t.expect("550 Recipient address rejected: User unknown");
  t.send("MAIL FROM:<a@remote.example> SIZE=10");  // nested MAIL
  t.expect("503 Error: *");
}

TEST_F(SessionTest, EsmtpParametersNeedEhlo_RFC1869_4_5) {
  start();
  Transcript t(port_);
  t.expect("220 *");
  t.send("HELO client.example");
  t.expect("250 *");
  t.send("MAIL FROM:<a@remote.example> BODY=8BITMIME");
  t.expect("555 *");
}

TEST_F(SessionTest, CommandSequence_RFC5321_4_3_2) {
  start();
  Transcript t(port_);
  t.expect("220 *");
  t.send("MAIL FROM:<a@remote.example>");
  t.expect("503 5.5.1 *");
  t.send("EHLO client.example");
  t.expect("250 HELP");
  t.send("RCPT TO:<alice@example.test>");
  t.expect("503 5.5.1 *");
  t.send("DATA");
  t.expect("503 5.5.1 *");
  t.send("MAIL FROM:<a@remote.example>");
  t.expect("250 2.1.0 *");
  t.send("MAIL FROM:<a@remote.example>");
  t.expect("503 5.5.1 *");
  t.send("DATA");
  t.expect("554 5.5.1 *");  // RFC 5321 §3.3: no valid recipients
  t.send("RSET");
  t.expect("250 2.0.0 *");
  t.send("RCPT TO:<alice@example.test>");
  t.expect("503 5.5.1 *");  // RSET ended the transaction
}

TEST_F(SessionTest, RecipientVerdicts_RFC5321_3_3_RFC5321_7_1) {
  start();
  auto t = connect_ehlo();
  t->send("MAIL FROM:<>");
  t->expect("250 2.1.0 *");
  t->send("RCPT TO:<nobody@example.test>");
  t->expect("550 5.1.1 *");
  t->send("RCPT TO:<victim@elsewhere.example>");
  t->expect("554 5.7.1 *");
  t->send("RCPT TO:<bob@example.test>");
  t->expect("250 2.1.5 *");
}

TEST_F(SessionTest, RecipientLimit_RFC5321_4_5_3_1_8) {
  config_.limits.recipients = 1;
  start();
  auto t = connect_ehlo();
  t->send("MAIL FROM:<a@remote.example>");
  t->expect("250 *");
  t->send("RCPT TO:<alice@example.test>");
  t->expect("250 2.1.5 *");
  t->send("RCPT TO:<bob@example.test>");
  t->expect("452 4.5.3 *");
}

TEST_F(SessionTest, PipelinedGroupsAreAnswered_RFC2920_3_1) {
  start();
  auto t = connect_ehlo();
  t->send_raw(
      "MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\n"
      "RCPT TO:<bob@example.test>\r\nDATA\r\n");
  t->expect("250 2.1.0 *");
  t->expect("250 2.1.5 *");
  t->expect("550 5.1.1 *");
  t->expect("250 2.1.5 *");
  t->expect("354 *");
  // The next transaction follows the end of data in the same packet.
  t->send_raw("Subject: one\r\n\r\nx\r\n.\r\nMAIL FROM:<b@remote.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  t->expect("250 2.0.0 Ok: queued as Q1");
  t->expect("250 2.1.0 *");
  t->expect("250 2.1.5 *");
  t->expect("354 *");
  t->send_raw("Subject: two\r\n\r\ny\r\n.\r\nQUIT\r\n");
  t->expect("250 2.0.0 Ok: queued as Q2");
  t->expect("221 *");
  ASSERT_EQ(sink_.count(), 2u);
  EXPECT_EQ(sink_.envelope(0).recipients.size(), 2u);
  EXPECT_EQ(sink_.message(0).find("\tfor <"), std::string::npos);  // several recipients: no "for"
  EXPECT_EQ(sink_.envelope(1).sender_str(), "b@remote.example");
}

// Issue 14: a gateway recipient is verified at the next hop before the
// reply; the verification is asynchronous, yet pipelined replies stay in
// command order and a refusal leaves the transaction as it was.
class FakeVerifier final : public RecipientVerifier {
 public:
  bool wants(const mail::Address& rcpt) const override { return base::to_lower(rcpt.local) == "bob"; }
  net::awaitable<std::optional<mail::Reply>> verify(const mail::Address& rcpt) override {
    ++asked;
    asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
    co_await pause.async_wait(net::use_awaitable);  // the answer arrives later
    if (refuse) co_return mail::Reply(550, "5.1.1", "<" + rcpt.str() + ">: unknown at the next hop");
    co_return std::nullopt;
  }
  std::atomic<int> asked{0};
  std::atomic<bool> refuse{true};
};

TEST_F(SessionTest, GatewayRecipientVerifiedInOrder) {
  FakeVerifier verifier;
  verifier_ = &verifier;
  start();
  auto t = connect_ehlo();
  t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
              "RCPT TO:<ALICE@example.test>\r\nDATA\r\n");
  t->expect("250 2.1.0 *");
  t->expect("250 2.1.5 *");
  t->expect("550 5.1.1 <bob@example.test>: unknown at the next hop");
  t->expect("250 2.1.5 *");
  t->expect("354 *");
  t->send_raw("Subject: one\r\n\r\nx\r\n.\r\n");
  t->expect("250 2.0.0 *");
  ASSERT_EQ(sink_.count(), 1u);
  EXPECT_EQ(sink_.envelope(0).recipients.size(), 2u);
  verifier.refuse = false;
  t->send("MAIL FROM:<a@remote.example>");
  t->expect("250 *");
  t->send("RCPT TO:<bob@example.test>");
  t->expect("250 2.1.5 *");
  EXPECT_EQ(verifier.asked, 2);
  t->send("QUIT");
  t->expect("221 *");
}

TEST_F(SessionTest, BareLfRefusedAndSessionStaysInSync_RFC5321_2_3_8) {
  start();
  auto t = connect_ehlo();
  t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  t->expect("250 *");
  t->expect("250 *");
  t->expect("354 *");
  t->send_raw("Subject: outer\r\n\r\nouter\n.\nMAIL FROM:<evil@remote.example>\r\nRCPT TO:<alice@example.test>\r\n"
              "DATA\r\nSubject: SMUGGLED\r\n\r\nx\r\n.\r\n");
  t->expect("550 5.5.2 Error: bare <LF> received");
  t->send("NOOP");
  t->expect("250 2.0.0 *");
  EXPECT_EQ(sink_.count(), 0u);
}

// Every sequence of ../shared/testdata/smtp-smuggling: refused, or kept inside
// the one message; never a second message.
TEST_F(SessionTest, SmugglingSequences_RFC5321_4_1_1_4_SmtpSmuggling) {
  start();
  const std::vector<std::pair<std::string, std::string>> eods = {
      {"lf-dot-lf", "\n.\n"},       {"lf-dot-cr", "\n.\r"},          {"cr-dot-lf", "\r.\n"},
      {"cr-dot-cr", "\r.\r"},       {"lf-dot-crlf", "\n.\r\n"},      {"cr-dot-crlf", "\r.\r\n"},
      {"crlf-dot-lf", "\r\n.\n"},   {"crlf-dot-cr", "\r\n.\r"},      {"crlf-dot-crcrlf", "\r\n.\r\r\n"},
      {"crcrlf-dot-crcrlf", "\r\r\n.\r\r\n"}, {"crlf-nul-dot-crlf", std::string("\r\n\0.\r\n", 6)},
  };
  size_t accepted = 0;
  for (const auto& [id, eod] : eods) {
    auto t = connect_ehlo();
    t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    t->expect("250 *", id);
    t->expect("250 *", id);
    t->expect("354 *", id);
    t->send_raw("From: test@remote.example\r\nSubject: outer\r\n\r\nouter body" + eod +
                "MAIL FROM:<smuggled@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
                "From: smuggled@remote.example\r\nSubject: SMUGGLED\r\n\r\nsmuggled body\r\n.\r\n");
    std::string r = t->reply();
    if (r.starts_with("250 2.0.0 Ok: queued")) {
      ++accepted;
      EXPECT_NE(sink_.message(sink_.count() - 1).find("Subject: SMUGGLED"), std::string::npos) << id;
    } else {
      EXPECT_TRUE(r.starts_with("550 5.5.2")) << id << ": " << r;
    }
    t->send("QUIT");
    t->expect("221 *", id);  // not a 250/354 of a smuggled transaction
  }
  EXPECT_EQ(sink_.count(), accepted);
  for (size_t i = 0; i < sink_.count(); ++i) EXPECT_EQ(sink_.envelope(i).sender_str(), "a@remote.example");
}

// Issue 12 item 6: a message past mail::kSpillThreshold reaches the sink
// with its header section in memory and its body in the sink's file, byte
// for byte what was sent (dot-unstuffed); a small one stays in memory.
TEST_F(SessionTest, ALargeMessagesBodyIsSpilledToTheSinksFile) {
  config_.limits.message_size = 10 * mail::kSpillThreshold;
  start();
  auto t = connect_ehlo();
  std::string body;
  for (int i = 0; body.size() < 3 * mail::kSpillThreshold; ++i) body += "." + std::to_string(i) + " line\r\n";
  std::string stuffed;  // RFC 5321 §4.5.2 on the wire
  for (size_t pos = 0; pos < body.size();) {
    const size_t end = body.find("\r\n", pos) + 2;
    stuffed += "." + body.substr(pos, end - pos);
    pos = end;
  }
  for (const bool large : {false, true}) {
    t->send("MAIL FROM:<a@remote.example>");
    t->expect("250 *");
    t->send("RCPT TO:<alice@example.test>");
    t->expect("250 *");
    t->send("DATA");
    t->expect("354 *");
    t->send_raw("Subject: big\r\n\r\n" + (large ? stuffed : std::string(".x\r\n")) + ".\r\n");
    t->expect("250 2.0.0 *");
  }
  ASSERT_EQ(sink_.count(), 2u);
  EXPECT_FALSE(sink_.spilled(0));
  EXPECT_TRUE(sink_.spilled(1));
  const std::string msg = sink_.message(1);
  EXPECT_TRUE(msg.starts_with("Received: ")) << msg.substr(0, 100);
  EXPECT_TRUE(msg.ends_with("\r\nSubject: big\r\n\r\n" + body)) << "every byte, in order";
  t->send("QUIT");
  t->expect("221 2.0.0 *");
}

TEST_F(SessionTest, SizeLimits_RFC1870_6) {
  config_.limits.message_size = 100;
  start();
  auto t = connect_ehlo();
  t->send("MAIL FROM:<a@remote.example> SIZE=101");
  t->expect("552 5.3.4 *");
  t->send("MAIL FROM:<a@remote.example> SIZE=50");
  t->expect("250 *");
  t->send("RCPT TO:<alice@example.test>");
  t->expect("250 *");
  t->send("DATA");
  t->expect("354 *");
  t->send_raw(std::string(200, 'x') + "\r\n.\r\n");
  t->expect("552 5.3.4 *");
  t->send("NOOP");
  t->expect("250 *");
  EXPECT_EQ(sink_.count(), 0u);
}

TEST_F(SessionTest, ReceivedLoopLimit_RFC5321_6_3) {
  config_.limits.received_headers = 3;
  start();
  auto t = connect_ehlo();
  t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  t->expect("250 *");
  t->expect("250 *");
  t->expect("354 *");
  std::string hdrs;
  for (int i = 0; i < 4; ++i) hdrs += "Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\n";
  t->send_raw(hdrs + "Subject: loop\r\n\r\nbody\r\n.\r\n");
  t->expect("554 5.4.6 *");
  EXPECT_EQ(sink_.count(), 0u);
}

TEST_F(SessionTest, SinkFailureIs451_DESIGN_durability) {
  sink_.set_fail(true);
  start();
  auto t = connect_ehlo();
  t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  t->expect("250 *");
  t->expect("250 *");
  t->expect("354 *");
  t->send_raw("Subject: x\r\n\r\nbody\r\n.\r\n");
  t->expect("451 4.3.0 *");
}

// A full disk (ENOSPC, EDQUOT) is "insufficient system storage": RFC 3463
// X.3.1, and RFC 5321 §4.3.2 lists 452 among the replies after DATA. The
// session stays usable, and the path in the log never reaches the peer.
TEST_F(SessionTest, SinkOutOfSpaceIs452_RFC3463_3_1) {
  sink_.set_fail(true, ENOSPC);
  start();
  auto t = connect_ehlo();
  for (int error_number : {ENOSPC, EDQUOT}) {
    sink_.set_fail(true, error_number);
    t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    t->expect("250 *");
    t->expect("250 *");
    t->expect("354 *");
    t->send_raw("Subject: x\r\n\r\nbody\r\n.\r\n");
    t->expect("452 4.3.1 Error: insufficient system storage, try again later");
  }
  sink_.set_fail(false);
  t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  t->expect("250 *");
  t->expect("250 *");
  t->expect("354 *");
  t->send_raw("Subject: x\r\n\r\nbody\r\n.\r\n");
  t->expect("250 2.0.0 *");
  EXPECT_EQ(sink_.count(), 1u);
}

// Issue 4: the sink refuses at end of DATA (DMARC p=reject) and the session
// stays usable; nothing is stored.
TEST_F(SessionTest, SinkRefusalAfterData_RFC5321_4_2_5) {
  sink_.set_refusal(mail::Reply(550, "5.7.1", "Rejected by DMARC policy"));
  start();
  auto t = connect_ehlo();
  t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  t->expect("250 *");
  t->expect("250 *");
  t->expect("354 *");
  t->send_raw("Subject: x\r\n\r\nbody\r\n.\r\n");
  t->expect("550 5.7.1 Rejected by DMARC policy");
  EXPECT_EQ(sink_.count(), 0u);
  sink_.set_refusal(std::nullopt);
  t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  t->expect("250 *");
  t->expect("250 *");
  t->expect("354 *");
  t->send_raw("Subject: x\r\n\r\nbody\r\n.\r\n");
  t->expect("250 2.0.0 *");
  EXPECT_EQ(sink_.count(), 1u);
}

// Issue 4: the sink screens recipients before the address policy (SRS).
TEST_F(SessionTest, SinkScreensRecipients_RFC5321_3_3) {
  start();
  auto t = connect_ehlo();
  t->send("MAIL FROM:<>");
  t->expect("250 2.1.0 *");
  t->send("RCPT TO:<SRS0=bad@elsewhere.example>");
  t->expect("550 5.1.1 Invalid SRS address");
  t->send("RCPT TO:<SRS0=x=ok@elsewhere.example>");
  t->expect("250 2.1.5 *");
}

TEST_F(SessionTest, Utf8AddressesNeedSmtputf8_RFC6531_3_4) {
  config_.addresses.push_back({"δοκιμή@example.test", {{mail::Target::Kind::mailbox, "alice"}}});
  start();
  auto t = connect_ehlo();
  t->send("MAIL FROM:<δοκιμή@παράδειγμα.example>");
  t->expect("553 5.6.7 *");
  t->send("MAIL FROM:<a@remote.example>");
  t->expect("250 *");
  t->send("RCPT TO:<δοκιμή@example.test>");
  t->expect("553 5.6.7 *");
  t->send("RSET");
  t->expect("250 *");
  t->send("MAIL FROM:<δοκιμή@παράδειγμα.example> SMTPUTF8");
  t->expect("250 2.1.0 *");
  t->send("RCPT TO:<δοκιμή@example.test>");
  t->expect("250 2.1.5 *");
  t->send("DATA");
  t->expect("354 *");
  t->send_raw("Subject: ünïcödé\r\n\r\nbody\r\n.\r\n");
  t->expect("250 2.0.0 *");
  ASSERT_EQ(sink_.count(), 1u);
  EXPECT_TRUE(sink_.envelope(0).smtputf8);
  EXPECT_NE(sink_.message(0).find(" with UTF8SMTP id "), std::string::npos);
}

// RFC 6531 §3.3 (UTF8-non-ascii of RFC 6532 §3.1): an address that is not
// well-formed UTF-8 is refused even with SMTPUTF8, never forwarded raw.
TEST_F(SessionTest, InvalidUtf8AddressesAreRefused_RFC6531_3_3) {
  start();
  auto t = connect_ehlo();
  t->send("MAIL FROM:<caf\xc3@remote.example> SMTPUTF8");
  t->expect("553 5.6.7 Address is not valid UTF-8");
  t->send("MAIL FROM:<a@remote.example> SMTPUTF8");
  t->expect("250 *");
  t->send("RCPT TO:<\xed\xa0\x80@example.test>");
  t->expect("553 5.6.7 Address is not valid UTF-8");
  t->send("QUIT");
  t->expect("221 *");
  EXPECT_EQ(sink_.count(), 0u);
}

TEST_F(SessionTest, MiscCommands_RFC5321_4_1_1) {
  start();
  auto t = connect_ehlo();
  t->send("VRFY alice");
  t->expect("252 2.5.2 *");
  t->send("EXPN staff");
  t->expect("502 5.5.1 *");
  t->send("HELP");
  t->expect("214 2.0.0 *");
  t->send("NOOP");
  t->expect("250 2.0.0 *");
  t->send("XYZZY");
  t->expect("500 5.5.2 *");
  t->send("AUTH PLAIN AGFsaWNlAHNlY3JldA==");
  t->expect("503 5.5.1 *");  // port 25: no AUTH
  t->send("RCPT TO:<Postmaster>");
  t->expect("503 5.5.1 *");
}

TEST_F(SessionTest, CommandTimeout_RFC5321_4_5_3_2_7) {
  config_.limits.command_timeout = std::chrono::seconds(1);
  start();
  Transcript t(port_);
  t.expect("220 *");
  t.expect("421 4.4.2 *");
  EXPECT_TRUE(t.closed());
}

TEST_F(SessionTest, TooManyErrors_RFC5321_4_3_2) {
  config_.limits.errors = 3;
  start();
  Transcript t(port_);
  t.expect("220 *");
  t.send_raw("BAD1\r\nBAD2\r\nBAD3\r\nNOOP\r\n");
  t.expect("500 5.5.2 *");
  t.expect("500 5.5.2 *");
  t.expect("500 5.5.2 *");
  t.expect("421 4.7.0 *");
  EXPECT_TRUE(t.closed());
}

TEST_F(SessionTest, LineTooLong_RFC5321_4_5_3_1_4) {
  config_.limits.line_length = 100;
  start();
  Transcript t(port_);
  t.expect("220 *");
  t.send("NOOP " + std::string(300, 'x'));
  t.expect("500 5.5.6 *");
  t.send("NOOP");
  t.expect("250 *");
}

TEST_F(SessionTest, StartTls_RFC3207_4_2) {
  enable_tls();
  start();
  auto t = connect_ehlo();
  // Plaintext pipelined after STARTTLS must be discarded, not answered in TLS.
  t->send_raw("STARTTLS\r\nNOOP\r\n");
  t->expect("220 2.0.0 *");
  t->handshake();
  t->send("MAIL FROM:<a@remote.example>");
  t->expect("503 5.5.1 *");  // state reset to before EHLO
  t->send("EHLO client.example");
  std::string r = t->reply();
  EXPECT_EQ(r.find("STARTTLS"), std::string::npos) << r;
  EXPECT_TRUE(r.starts_with("250-mx.example.test")) << r;  // not the NOOP's reply
  t->send_raw("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  t->expect("250 *");
  t->expect("250 *");
  t->expect("354 *");
  t->send_raw("Subject: tls\r\n\r\nbody\r\n.\r\n");
  t->expect("250 2.0.0 *");
  ASSERT_EQ(sink_.count(), 1u);
  EXPECT_NE(sink_.message(0).find(" with ESMTPS id "), std::string::npos) << sink_.message(0);
  t->send("STARTTLS");
  t->expect("503 5.5.1 *");
}

TEST_F(SessionTest, ImplicitTlsOnSubmissions_RFC8314_3) {
  enable_tls();
  start(Role::submissions);
  Transcript t(port_);
  t.handshake();
  t.expect("220 mx.example.test ESMTP hikyaku");
  t.send("EHLO client.example");
  EXPECT_EQ(t.reply().find("STARTTLS"), std::string::npos);
  t.send("MAIL FROM:<a@example.test>");
  t.expect("530 5.7.0 *");  // RFC 4954 §6: submission needs AUTH first
}

// AUTH PLAIN "\0alice\0secret", "\0alice\0wrong".
constexpr std::string_view kAlicePlain = "AGFsaWNlAHNlY3JldA==";
constexpr std::string_view kAliceWrong = "AGFsaWNlAHdyb25n";

TEST_F(SessionTest, SubmissionOffersAuthOnlyInsideTls_RFC4954_RFC8314_3_3) {
  enable_tls();
  add_login();
  start(Role::submission);
  auto t = connect_ehlo();
  t->send("EHLO client.example");
  EXPECT_EQ(t->reply().find("AUTH"), std::string::npos);
  t->send("AUTH PLAIN " + std::string(kAlicePlain));
  t->expect("538 5.7.11 *");
  t->send("MAIL FROM:<alice@example.test>");
  t->expect("530 5.7.0 *");
  t->send("STARTTLS");
  t->expect("220 *");
  t->handshake();
  t->send("EHLO client.example");
  std::string r = t->reply();
  EXPECT_NE(r.find("250-AUTH PLAIN LOGIN"), std::string::npos) << r;
  t->send("AUTH PLAIN " + std::string(kAlicePlain));
  t->expect("235 2.7.0 *");
  t->send("EHLO client.example");
  EXPECT_EQ(t->reply().find("AUTH"), std::string::npos) << "no second AUTH offered";
  t->send("AUTH PLAIN " + std::string(kAlicePlain));
  t->expect("503 5.5.1 *");
}

TEST_F(SessionTest, AuthenticatedSubmissionRelaysAsItsOwnSender_RFC4954_RFC6409_6_1) {
  enable_tls();
  add_login();
  start(Role::submissions);
  Transcript t(port_);
  t.handshake();
  t.expect("220 *");
  t.send("EHLO laptop.home");
  t.expect("250 HELP");
  t.send("AUTH PLAIN");  // no initial response: an empty challenge first
  t.expect("334 ");
  t.send(std::string(kAlicePlain));
  t.expect("235 2.7.0 *");
  t.send("MAIL FROM:<bob@example.test>");
  t.expect("553 5.7.1 *");  // not one of alice's send_as addresses
  t.send("MAIL FROM:<alice@example.test> AUTH=<>");
  t.expect("250 *");
  t.send("RCPT TO:<friend@elsewhere.example>");
  t.expect("250 2.1.5 *");  // relayed for an authenticated user
  t.send("DATA");
  t.expect("354 *");
  t.send_raw("From: alice@example.test\r\nSubject: hi\r\n\r\nbody\r\n.\r\n");
  t.expect("250 2.0.0 *");
  ASSERT_EQ(sink_.count(), 1u);
  EXPECT_EQ(sink_.envelope(0).auth_user, "alice");
  const std::string m = sink_.message(0);
  EXPECT_TRUE(m.starts_with("Received: by mx.example.test (hikyaku)")) << m;  // no client address, no HELO
  EXPECT_EQ(m.find("laptop.home"), std::string::npos) << m;
  EXPECT_EQ(m.find("127.0.0.1"), std::string::npos) << m;
  EXPECT_NE(m.find(" with ESMTPSA id "), std::string::npos) << m;  // RFC 3848
}

TEST_F(SessionTest, AuthLoginChallengesAndCancel_RFC4954_4) {
  enable_tls();
  add_login();
  start(Role::submissions);
  auto t = connect_submissions();
  t->send("AUTH LOGIN");
  t->expect("334 VXNlcm5hbWU6");  // "Username:"
  t->send("*");
  t->expect("501 5.7.0 *");
  t->send("AUTH CRAM-MD5");
  t->expect("504 5.5.4 *");
  t->send("AUTH LOGIN YWxpY2U=");  // initial response: the user name
  t->expect("334 UGFzc3dvcmQ6");  // "Password:"
  t->send("not base64!");
  t->expect("501 5.5.2 *");
  t->send("AUTH LOGIN");
  t->expect("334 VXNlcm5hbWU6");
  t->send("YWxpY2U=");
  t->expect("334 UGFzc3dvcmQ6");
  t->send("c2VjcmV0");
  t->expect("235 2.7.0 *");
}

TEST_F(SessionTest, WrongPasswordsEndTheSession_RFC4954_6) {
  enable_tls();
  add_login();
  start(Role::submissions);
  auto t = connect_submissions();
  t->send("MAIL FROM:<alice@example.test>");
  t->expect("530 5.7.0 *");
  for (int i = 0; i < 3; ++i) {
    t->send("AUTH PLAIN " + std::string(kAliceWrong));
    t->expect("535 5.7.8 *");
  }
  t->expect("421 4.7.0 *");
  EXPECT_TRUE(t->closed());
}

TEST_F(SessionTest, NoAuthDuringATransaction_RFC4954_4) {
  enable_tls();
  add_login();
  start(Role::submissions);
  auto t = connect_submissions();
  t->send("AUTH PLAIN " + std::string(kAlicePlain));
  t->expect("235 *");
  t->send("MAIL FROM:<alice@example.test>");
  t->expect("250 *");
  t->send("AUTH PLAIN " + std::string(kAlicePlain));
  t->expect("503 5.5.1 *");
}

TEST_F(SessionTest, PortTwentyFiveOffersNoAuth_RFC4954_3) {
  enable_tls();
  add_login();
  start(Role::mx);
  auto t = connect_ehlo();
  t->send("STARTTLS");
  t->expect("220 *");
  t->handshake();
  t->send("EHLO client.example");
  EXPECT_EQ(t->reply().find("AUTH"), std::string::npos);
  t->send("AUTH PLAIN " + std::string(kAlicePlain));
  t->expect("503 5.5.1 *");
  t->send("MAIL FROM:<a@remote.example> AUTH=<>");
  t->expect("555 5.5.4 *");
  t->send("MAIL FROM:<a@remote.example>");
  t->expect("250 *");
  t->send("RCPT TO:<someone@elsewhere.example>");
  t->expect("554 5.7.1 *");  // never a relay
}

}  // namespace
}  // namespace hikyaku::smtp::server
