// scan::Client against a clamd stand-in on a Unix socket: what clamd is
// sent (each attachment decoded, or the whole message), for a message in
// memory and for one whose body is in a file (the walk, the decoding and
// the body reads run on the blocking pool, the sockets on the loop).
#include "scan/client.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/file.hpp"
#include "mail/message.hpp"
#include "scan/protocol/clamd.hpp"

namespace hikyaku::scan {
namespace {

namespace asio = net::asio;
using asio::as_tuple;
using net::use_awaitable;

// The EICAR test file (https://www.eicar.org).
constexpr std::string_view kEicar = R"(X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*)";

// clamd's part: one INSTREAM per connection; it keeps what each stream held
// and answers FOUND when that holds EICAR, OK otherwise.
class FakeClamd {
 public:
  FakeClamd(asio::io_context& io, const std::filesystem::path& path)
      : acceptor_(io, asio::local::stream_protocol::endpoint(path.string())) {
    asio::co_spawn(io, serve(), asio::detached);
  }

  std::vector<std::string> streams;

 private:
  net::awaitable<void> serve() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(as_tuple(use_awaitable));
      if (ec) co_return;
      std::string stream;
      const bool ok = co_await read_instream(socket, stream);
      if (!ok) continue;
      streams.push_back(stream);
      const bool eicar = stream.find(kEicar) != std::string::npos;
      std::string reply = eicar ? "stream: Eicar-Test-Signature FOUND" : "stream: OK";
      reply += '\0';
      auto [wec, n] = co_await asio::async_write(socket, asio::buffer(reply), as_tuple(use_awaitable));
      (void)wec;
      (void)n;
    }
  }

  // The command, then length-prefixed chunks up to the zero-length one.
  static net::awaitable<bool> read_instream(asio::local::stream_protocol::socket& socket, std::string& stream) {
    std::string command(clamd::kInstream.size(), '\0');
    auto [ec, n] = co_await asio::async_read(socket, asio::buffer(command), as_tuple(use_awaitable));
    if (ec || command != clamd::kInstream) co_return false;
    for (;;) {
      std::array<unsigned char, 4> header{};
      auto [hec, hn] = co_await asio::async_read(socket, asio::buffer(header), as_tuple(use_awaitable));
      if (hec) co_return false;
      const size_t size = (size_t{header[0]} << 24) | (size_t{header[1]} << 16) | (size_t{header[2]} << 8) | header[3];
      if (size == 0) co_return true;
      std::string chunk(size, '\0');
      auto [cec, cn] = co_await asio::async_read(socket, asio::buffer(chunk), as_tuple(use_awaitable));
      if (cec) co_return false;
      stream += chunk;
    }
  }

  asio::local::stream_protocol::acceptor acceptor_;
};

// RFC 2045 §6.8 base64, in lines of 76.
std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::string line;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
    line += kAlphabet[(v >> 18) & 63];
    line += kAlphabet[(v >> 12) & 63];
    line += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    line += i + 2 < in.size() ? kAlphabet[v & 63] : '=';
    if (line.size() == 76) {
      out += line + "\r\n";
      line.clear();
    }
  }
  if (!line.empty()) out += line + "\r\n";
  return out;
}

// A multipart/mixed message: a text part, then each (filename, octets) as
// a base64 attachment.
std::string with_attachments(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string m =
      "From: a@example.test\r\nTo: b@example.test\r\nSubject: scan\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
      "--b1\r\nContent-Type: text/plain\r\n\r\nSee the attachments.\r\n";
  for (const auto& [name, octets] : files) {
    m += "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
         "Content-Disposition: attachment; filename=\"" +
         name + "\"\r\n\r\n" + base64(octets);
  }
  return m + "--b1--\r\n";
}

// A large attachment's octets: every byte value, over and over.
std::string filler(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return out;
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("hikyaku-scan-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    settings_.clamd.unix_path = dir_ / "clamd.ctl";
    std::filesystem::remove(settings_.clamd.unix_path);
    settings_.timeout = std::chrono::seconds(20);
    clamd_ = std::make_unique<FakeClamd>(io_, settings_.clamd.unix_path);
  }
  void TearDown() override {
    clamd_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // The message as intake holds it: in memory, or (over
  // mail::kSpillThreshold) its body in a file.
  mail::Message held(const std::string& bytes) {
    auto fd = base::open_temporary(dir_);
    EXPECT_TRUE(fd) << fd.error().message;
    EXPECT_TRUE(base::write_all(fd->get(), bytes, "tmp"));
    mail::FileRange range{std::make_shared<const base::UniqueFd>(std::move(fd).value()), "tmp", 0, bytes.size()};
    auto m = mail::read_message(range);
    EXPECT_TRUE(m) << m.error().message;
    return std::move(m).value();
  }

  Report scan(const mail::Message& message, config::Scan::ClamdScope scope) {
    settings_.clamd_scope = scope;
    Client client(settings_, io_.get_executor(), pool_);
    Report report;
    bool done = false;
    mail::Envelope envelope;
    client.scan(envelope, message, [&](Report r) {
      report = std::move(r);
      done = true;
    });
    io_.restart();
    while (!done && io_.run_one_for(std::chrono::seconds(30)) > 0) {
    }
    EXPECT_TRUE(done);
    return report;
  }

  std::filesystem::path dir_;
  asio::io_context io_;
  asio::thread_pool pool_{2};
  config::Scan settings_;
  std::unique_ptr<FakeClamd> clamd_;
};

TEST_F(ClientTest, AttachmentsScopeSendsEachAttachmentDecodedAndFindsEicar) {
  const std::string bytes = with_attachments({{"notes.bin", "just a file"}, {"eicar.com", std::string(kEicar)}});
  const mail::Message m = held(bytes);
  ASSERT_FALSE(m.body);
  const Report r = scan(m, config::Scan::ClamdScope::attachments);
  EXPECT_TRUE(r.clamd_asked);
  EXPECT_EQ(r.clamd.kind, clamd::Reply::Kind::found) << r.clamd.detail;
  EXPECT_NE(r.clamd.detail.find("in \"eicar.com\""), std::string::npos) << r.clamd.detail;
  ASSERT_EQ(clamd_->streams.size(), 2u);
  EXPECT_EQ(clamd_->streams[0], "just a file");
  EXPECT_EQ(clamd_->streams[1], kEicar);
}

TEST_F(ClientTest, AttachmentsScopeWalksALargeMessagesBodyFile) {
  const std::string big = filler(1536 * 1024);
  const mail::Message found = held(with_attachments({{"one.bin", big}, {"eicar.com", std::string(kEicar)}}));
  ASSERT_TRUE(found.body);  // over kSpillThreshold: the body is in the file
  const Report r = scan(found, config::Scan::ClamdScope::attachments);
  EXPECT_EQ(r.clamd.kind, clamd::Reply::Kind::found) << r.clamd.detail;
  ASSERT_EQ(clamd_->streams.size(), 2u);
  EXPECT_TRUE(clamd_->streams[0] == big);
  EXPECT_EQ(clamd_->streams[1], kEicar);

  clamd_->streams.clear();
  const mail::Message clean = held(with_attachments({{"one.bin", big}, {"two.bin", big}}));
  ASSERT_TRUE(clean.body);
  const Report c = scan(clean, config::Scan::ClamdScope::attachments);
  EXPECT_EQ(c.clamd.kind, clamd::Reply::Kind::clean) << c.clamd.detail;
  EXPECT_EQ(c.clamd.detail, "2 attachments");
  EXPECT_EQ(clamd_->streams.size(), 2u);
}

TEST_F(ClientTest, MessageScopeSendsALargeMessageWholeFromItsBodyFile) {
  const std::string bytes = with_attachments({{"one.bin", filler(1536 * 1024)}}) + std::string(kEicar) + "\r\n";
  const mail::Message m = held(bytes);
  ASSERT_TRUE(m.body);
  const Report r = scan(m, config::Scan::ClamdScope::message);
  EXPECT_EQ(r.clamd.kind, clamd::Reply::Kind::found) << r.clamd.detail;
  ASSERT_EQ(clamd_->streams.size(), 1u);
  EXPECT_TRUE(clamd_->streams[0] == bytes);  // (not EXPECT_EQ: no 2 MB diff on failure)
}

TEST_F(ClientTest, AttachmentsScopeDoesNotAskAboutAMessageWithoutOne) {
  const mail::Message m = held("From: a@example.test\r\nSubject: plain\r\n\r\nHello.\r\n");
  const Report r = scan(m, config::Scan::ClamdScope::attachments);
  EXPECT_EQ(r.clamd.kind, clamd::Reply::Kind::clean);
  EXPECT_EQ(r.clamd.detail, "no attachment: clamd not asked");
  EXPECT_TRUE(clamd_->streams.empty());
}

// A scan that throws (here Asio: a UNIX socket path longer than sun_path,
// which the configuration refuses but the client must survive) still
// answers: every configured scanner failed, and on_failure decides.
TEST_F(ClientTest, AScanThatThrowsStillAnswersWithFailures) {
  settings_.clamd.unix_path = "/" + std::string(200, 'x');
  settings_.rspamd.unix_path = "/" + std::string(200, 'y');
  const Report r = scan(held("Subject: x\r\n\r\nbody\r\n"), config::Scan::ClamdScope::message);
  EXPECT_TRUE(r.clamd_asked);
  EXPECT_EQ(r.clamd.kind, clamd::Reply::Kind::error);
  EXPECT_TRUE(r.rspamd_asked);
  EXPECT_FALSE(r.rspamd);
  EXPECT_FALSE(r.rspamd_error.empty());
  EXPECT_EQ(decide(r, OnFailure::tempfail).kind, Decision::Kind::refuse);
}

}  // namespace
}  // namespace hikyaku::scan
