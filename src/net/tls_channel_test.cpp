// Tests for net::TlsChannel through net::Stream (its one user) and on its
// own: handshakes both ways over a loopback TCP pair in one io_context,
// certificate verification, writes of many records, deadlines, and how a
// peer's close reads (RFC 8446 §6.1: close_notify = eof, none = truncated).
#include "net/tls_channel.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "net/stream.hpp"
#include "tls/context.hpp"

namespace hikyaku::net {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One self-signed certificate for "mx.example.test" for every test.
struct TestCertificate {
  std::filesystem::path dir;
  std::shared_ptr<ssl::context> server;
  TestCertificate() {
    dir = std::filesystem::temp_directory_path() / ("hikyaku-tls-channel-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto made = tls::ensure_self_signed(dir / "cert.pem", dir / "key.pem", "mx.example.test");
    if (!made.ok()) ADD_FAILURE() << made.error().message;
    auto ctx = tls::make_server_context(dir / "cert.pem", dir / "key.pem");
    if (!ctx.ok()) ADD_FAILURE() << ctx.error().message;
    else server = ctx.value();
  }
  ~TestCertificate() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

// Run both sides to completion (a test that hangs fails after 20 s).
void run_sides(asio::io_context& io, const std::function<awaitable<void>()>& server_side,
               const std::function<awaitable<void>()>& client_side) {
  int done = 0;
  auto finish = [&done](const std::exception_ptr& e) {
    if (e) ADD_FAILURE() << "a side threw";
    ++done;
  };
  asio::co_spawn(io, server_side(), finish);
  asio::co_spawn(io, client_side(), finish);
  io.run_for(20s);
  io.restart();
  EXPECT_EQ(done, 2) << "a side did not finish";
}

// The certificate, made once for the whole test program.
const TestCertificate& certificate() {
  static const TestCertificate made;
  return made;
}

class TlsChannelTest : public ::testing::Test {
 protected:
  TlsChannelTest() {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client(io_);
    client.connect(acceptor.local_endpoint());
    tcp::socket server = acceptor.accept();
    server_.emplace(std::move(server), certificate().server, 70000);
    client_ctx_ = std::make_shared<ssl::context>(ssl::context::tls_client);
    client_ctx_->set_verify_mode(ssl::verify_none);
    client_.emplace(std::move(client), client_ctx_, 70000);
  }

  void run(const std::function<awaitable<void>()>& server_side, const std::function<awaitable<void>()>& client_side) {
    run_sides(io_, server_side, client_side);
  }

  // Both handshakes, concurrently; expected to succeed. Then one line from
  // the server, so that the client has read the TLS 1.3 session tickets
  // too: a close with unread input would be a TCP reset, not a close.
  void handshake() {
    bool server_ok = false;
    bool client_ok = false;
    Stream::Line ready;
    run(
        [&]() -> awaitable<void> {
          server_ok = co_await server_->start_tls(5s);
          if (server_ok) co_await server_->write("ready\r\n", 5s);
        },
        [&]() -> awaitable<void> {
          client_ok = co_await client_->start_tls_client("mx.example.test", 5s);
          if (client_ok) ready = co_await client_->read_line_until(Clock::now() + 5s);
        });
    ASSERT_TRUE(server_ok) << server_->last_error().message();
    ASSERT_TRUE(client_ok) << client_->last_error().message();
    ASSERT_EQ(ready.text, "ready");
  }

  asio::io_context io_;
  std::shared_ptr<ssl::context> client_ctx_;
  std::optional<Stream> server_;
  std::optional<Stream> client_;
};

TEST_F(TlsChannelTest, HandshakeBothWaysThenLinesBothWays) {
  handshake();
  EXPECT_TRUE(server_->tls_active());
  EXPECT_TRUE(client_->tls_active());
  EXPECT_EQ(server_->tls_description().rfind("TLSv1.3 ", 0), 0u) << server_->tls_description();
  auto params = client_->tls_parameters();
  ASSERT_TRUE(params);
  EXPECT_EQ(params->version, "TLSv1.3");
  EXPECT_GE(params->secret_bits, 128);

  Stream::Line got_by_server;
  Stream::Line got_by_client;
  run(
      [&]() -> awaitable<void> {
        got_by_server = co_await server_->read_line_until(Clock::now() + 5s);
        co_await server_->write("250 hello\r\n", 5s);
      },
      [&]() -> awaitable<void> {
        co_await client_->write("EHLO client\r\n", 5s);
        got_by_client = co_await client_->read_line_until(Clock::now() + 5s);
      });
  EXPECT_EQ(got_by_server.status, Stream::ReadStatus::line);
  EXPECT_EQ(got_by_server.text, "EHLO client");
  EXPECT_EQ(got_by_client.status, Stream::ReadStatus::line);
  EXPECT_EQ(got_by_client.text, "250 hello");
}

TEST_F(TlsChannelTest, LargeWriteArrivesWholeOverManyRecords) {
  handshake();
  // 1 MiB + 3: sixteen 64 KiB blocks, each many 16 KiB records, and a tail.
  std::string sent(1024 * 1024 + 3, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  // Small socket buffers: the writer must wait for writability many times.
  client_->socket().set_option(asio::socket_base::receive_buffer_size(65536));
  server_->socket().set_option(asio::socket_base::send_buffer_size(65536));
  bool wrote = false;
  std::string received;
  run([&]() -> awaitable<void> { wrote = co_await server_->write(sent, 5s); },
      [&]() -> awaitable<void> {
        while (received.size() < sent.size()) {
          bool ok = co_await client_->read_some(received, Clock::now() + 5s);
          if (!ok) break;
        }
      });
  EXPECT_TRUE(wrote) << server_->last_error().message();
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent) << "the bytes differ";
}

TEST_F(TlsChannelTest, ReadWithDeadlineTimesOut) {
  handshake();
  Stream::Line line;
  const auto start = Clock::now();
  run([&]() -> awaitable<void> { line = co_await server_->read_line_until(Clock::now() + 150ms); },
      [&]() -> awaitable<void> { co_return; });  // the client says nothing
  EXPECT_EQ(line.status, Stream::ReadStatus::timeout);
  EXPECT_TRUE(server_->timed_out());
  EXPECT_EQ(server_->last_error(), asio::error::timed_out);
  EXPECT_GE(Clock::now() - start, 150ms);
}

TEST_F(TlsChannelTest, WriteToAPeerThatDoesNotReadTimesOut) {
  handshake();
  client_->socket().set_option(asio::socket_base::receive_buffer_size(8192));
  server_->socket().set_option(asio::socket_base::send_buffer_size(8192));
  const std::string big(4 * 1024 * 1024, 'x');
  bool wrote = true;
  run([&]() -> awaitable<void> { wrote = co_await server_->write(big, 200ms); },
      [&]() -> awaitable<void> { co_return; });  // never reads
  EXPECT_FALSE(wrote);
  EXPECT_TRUE(server_->timed_out());
}

TEST_F(TlsChannelTest, PeerCloseWithCloseNotifyReadsAsClosedEof) {
  handshake();
  Stream::Line line;
  run([&]() -> awaitable<void> { line = co_await server_->read_line_until(Clock::now() + 5s); },
      [&]() -> awaitable<void> {
        client_->close();  // sends close_notify (best effort), then FIN
        co_return;
      });
  EXPECT_EQ(line.status, Stream::ReadStatus::closed);
  EXPECT_EQ(server_->last_error(), asio::error::eof) << server_->last_error().message();
  EXPECT_FALSE(server_->timed_out());
}

TEST_F(TlsChannelTest, PeerCloseWithoutCloseNotifyReadsAsClosedTruncated) {
  handshake();
  Stream::Line line;
  run([&]() -> awaitable<void> { line = co_await server_->read_line_until(Clock::now() + 5s); },
      [&]() -> awaitable<void> {
        error_code ec;
        client_->socket().shutdown(tcp::socket::shutdown_both, ec);  // TCP FIN, no TLS alert
        co_return;
      });
  EXPECT_EQ(line.status, Stream::ReadStatus::closed);
  EXPECT_EQ(server_->last_error(), ssl::error::stream_truncated) << server_->last_error().message();
}

TEST_F(TlsChannelTest, PartialLineThenCloseKeepsNoLine) {
  handshake();
  Stream::Line line;
  run([&]() -> awaitable<void> { line = co_await server_->read_line_until(Clock::now() + 5s); },
      [&]() -> awaitable<void> {
        co_await client_->write("NOOP", 5s);  // no line ending
        client_->close();
      });
  EXPECT_EQ(line.status, Stream::ReadStatus::closed);
}

TEST_F(TlsChannelTest, ReadWhileWritingOnOneStream) {
  // IMAP IDLE: a read waits while the same stream writes updates.
  handshake();
  bool read_ok = false;
  std::string server_got;
  Stream::Line client_got;
  // (The reader's closure outlives both coroutines: a coroutine lambda's
  // captures live in the closure, not in the coroutine's frame.)
  auto reader = [&]() -> awaitable<void> { read_ok = co_await server_->read_some(server_got, Clock::now() + 5s); };
  run(
      [&]() -> awaitable<void> {
        asio::co_spawn(io_, reader(), asio::detached);
        co_await server_->write("* 4 EXISTS\r\n", 5s);
      },
      [&]() -> awaitable<void> {
        client_got = co_await client_->read_line_until(Clock::now() + 5s);
        co_await client_->write("DONE\r\n", 5s);
      });
  EXPECT_EQ(client_got.text, "* 4 EXISTS");
  EXPECT_TRUE(read_ok);
  EXPECT_EQ(server_got, "DONE\r\n");
}

TEST_F(TlsChannelTest, VerifiedHandshakeChecksChainAndName) {
  struct Case {
    const char* name;
    bool trust;        // the certificate is a trust anchor of the client
    std::string host;  // the name the client asks for
    bool want;
  };
  const Case cases[] = {
      {"trusted, right name", true, "mx.example.test", true},
      {"trusted, wrong name (RFC 6125)", true, "other.example.test", false},
      {"not trusted", false, "mx.example.test", false},
  };
  for (const auto& c : cases) {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client_socket(io);
    client_socket.connect(acceptor.local_endpoint());
    Stream server(acceptor.accept(), certificate().server, 1000);
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    if (c.trust) ctx->load_verify_file((certificate().dir / "cert.pem").string());
    Stream client(std::move(client_socket), ctx, 1000);
    bool client_ok = !c.want;
    run_sides(
        io, [&]() -> awaitable<void> { co_await server.start_tls(5s); },
        [&]() -> awaitable<void> { client_ok = co_await client.start_tls_client(c.host, 5s, /*verify=*/true); });
    EXPECT_EQ(client_ok, c.want) << c.name << ": " << client.last_error().message();
    if (!c.want) {
      EXPECT_NE(client.last_error().message().find("certificate verify failed"), std::string::npos)
          << c.name << ": got " << client.last_error().message();
    }
  }
}

TEST_F(TlsChannelTest, PlainStreamStillReadsAndSeesEof) {
  Stream::Line first;
  Stream::Line second;
  run(
      [&]() -> awaitable<void> {
        first = co_await server_->read_line_until(Clock::now() + 5s);
        second = co_await server_->read_line_until(Clock::now() + 5s);
      },
      [&]() -> awaitable<void> {
        co_await client_->write("HELO a\n", 5s);
        client_->close();
      });
  EXPECT_EQ(first.status, Stream::ReadStatus::line);
  EXPECT_EQ(first.text, "HELO a");
  EXPECT_TRUE(first.bare_lf);
  EXPECT_EQ(second.status, Stream::ReadStatus::closed);
  EXPECT_FALSE(server_->tls_active());
}

TEST_F(TlsChannelTest, HandshakeWithASilentPeerTimesOut) {
  bool ok = true;
  run([&]() -> awaitable<void> { ok = co_await server_->start_tls(150ms); },
      [&]() -> awaitable<void> { co_return; });
  EXPECT_FALSE(ok);
  EXPECT_TRUE(server_->timed_out());
  EXPECT_FALSE(server_->tls_active());
}

TEST_F(TlsChannelTest, HandshakeWithAPlaintextPeerFailsWithAnError) {
  bool ok = true;
  run([&]() -> awaitable<void> { ok = co_await server_->start_tls(5s); },
      [&]() -> awaitable<void> { co_await client_->write("EHLO not-tls\r\n\r\n\r\n\r\n", 5s); });
  EXPECT_FALSE(ok);
  EXPECT_FALSE(server_->timed_out());
  EXPECT_TRUE(server_->last_error());
}

}  // namespace
}  // namespace hikyaku::net
