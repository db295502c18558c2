#include "scan/client.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <type_traits>

#include "base/log.hpp"
#include "scan/protocol/clamd.hpp"
#include "scan/protocol/rspamd.hpp"

namespace hikyaku::scan {

using namespace boost::asio::experimental::awaitable_operators;
namespace asio = net::asio;
using asio::as_tuple;
using net::error_code;
using net::use_awaitable;
using unix_socket = asio::local::stream_protocol::socket;

namespace {

std::shared_ptr<spdlog::logger> log() { return base::logger("scan"); }

// What one exchange with a daemon gave: its whole answer, or why none.
struct Answer {
  std::string bytes;
  std::string error;  // "" when `bytes` is the answer
};

// Writes `data`; false (and `error`) on failure.
template <class Socket>
net::awaitable<bool> write_all(Socket& socket, std::string_view data, std::string& error) {
  const asio::const_buffer buffer(data.data(), data.size());
  auto [ec, n] = co_await asio::async_write(socket, buffer, as_tuple(use_awaitable));
  if (ec) error = "write: " + ec.message();
  co_return !ec;
}

// Reads until the peer closes (or, with `until_nul`, until a NUL), at
// most `max` octets.
template <class Socket>
net::awaitable<void> read_answer(Socket& socket, size_t max, bool until_nul, Answer& out) {
  std::array<char, 4096> buf{};
  while (out.bytes.size() <= max) {
    const asio::mutable_buffer buffer(buf.data(), buf.size());
    auto [ec, n] = co_await socket.async_read_some(buffer, as_tuple(use_awaitable));
    out.bytes.append(buf.data(), n);
    if (until_nul && out.bytes.find('\0') != std::string::npos) co_return;
    if (ec == asio::error::eof) co_return;
    if (ec) {
      out.error = "read: " + ec.message();
      co_return;
    }
  }
  out.error = "answer longer than " + std::to_string(max) + " octets";
}

// clamd INSTREAM: the command, the message in length-prefixed chunks, the
// zero-length end; then its one reply.
template <class Socket>
net::awaitable<void> instream(Socket& socket, const mail::Message& message, Answer& out) {
  if (!co_await write_all(socket, clamd::kInstream, out.error)) co_return;
  // XXX(scan): a large message's body file is read here, on the loop, as
  // the SMTP client reads it when forwarding; reads of a freshly written
  // file come from the page cache.
  mail::MessageCursor cursor(message);
  std::string_view piece;
  while (true) {
    auto more = cursor.next(piece, clamd::kChunk);
    if (!more.ok()) {
      out.error = "reading the message: " + more.error().message;
      co_return;
    }
    if (!*more) break;
    const std::string header = clamd::chunk_header(static_cast<uint32_t>(piece.size()));
    if (!co_await write_all(socket, header, out.error)) co_return;
    if (!co_await write_all(socket, piece, out.error)) co_return;
  }
  const std::string end = clamd::chunk_header(0);
  if (!co_await write_all(socket, end, out.error)) co_return;
  co_await read_answer(socket, clamd::kMaxReply, true, out);
}

// rspamd: the request head, the message as body, then the whole response.
template <class Socket>
net::awaitable<void> checkv2(Socket& socket, const std::string& head, const mail::Message& message, Answer& out) {
  if (!co_await write_all(socket, head, out.error)) co_return;
  mail::MessageCursor cursor(message);  // XXX(scan): as in instream()
  std::string_view piece;
  while (true) {
    auto more = cursor.next(piece);
    if (!more.ok()) {
      out.error = "reading the message: " + more.error().message;
      co_return;
    }
    if (!*more) break;
    if (!co_await write_all(socket, piece, out.error)) co_return;
  }
  co_await read_answer(socket, rspamd::kMaxResponse, false, out);
}

}  // namespace

struct Client::Impl : std::enable_shared_from_this<Impl> {
  Impl(config::Scan s, asio::any_io_executor ex) : settings(std::move(s)), executor(std::move(ex)) {}

  config::Scan settings;
  asio::any_io_executor executor;

  // Connects to `service` and runs `talk` on the socket, all within the
  // timeout.
  template <class Talk>
  net::awaitable<Answer> exchange(const config::ScanService& service, Talk talk) {
    Answer out;
    asio::steady_timer timer(executor);
    timer.expires_after(settings.timeout);
    auto run = [&](auto& socket, auto endpoint) -> net::awaitable<void> {
      auto [ec] = co_await socket.async_connect(endpoint, as_tuple(use_awaitable));
      if (ec) {
        out.error = "connect: " + ec.message();
        co_return;
      }
      // The request goes out in several writes (head, then the message's
      // pieces): with Nagle's algorithm a write would wait for the ACK of
      // the last, which the daemon delays (40 ms on Linux).
      if constexpr (std::is_same_v<std::decay_t<decltype(socket)>, net::tcp::socket>)
        socket.set_option(asio::ip::tcp::no_delay(true), ec);
      co_await talk(socket, out);
    };
    std::variant<std::monostate, std::tuple<error_code>> raced;
    if (!service.unix_path.empty()) {
      unix_socket socket(executor);
      const asio::local::stream_protocol::endpoint endpoint(service.unix_path.string());
      raced = co_await (run(socket, endpoint) || timer.async_wait(as_tuple(use_awaitable)));
    } else {
      net::tcp::socket socket(executor);
      error_code ec;
      const auto address = asio::ip::make_address(service.tcp.host, ec);
      const net::tcp::endpoint endpoint(address, service.tcp.port);
      raced = co_await (run(socket, endpoint) || timer.async_wait(as_tuple(use_awaitable)));
    }
    if (raced.index() == 1) out.error = "timed out after " + std::to_string(settings.timeout.count()) + " s";
    co_return out;
  }

  net::awaitable<void> ask_clamd(const mail::Message& message, Report& report) {
    report.clamd_asked = true;
    Answer a = co_await exchange(settings.clamd, [&](auto& socket, Answer& out) {
      return instream(socket, message, out);
    });
    if (!a.error.empty()) {
      report.clamd.kind = clamd::Reply::Kind::error;
      report.clamd.detail = settings.clamd.str() + ": " + a.error;
    } else {
      report.clamd = clamd::parse_reply(a.bytes);
    }
  }

  net::awaitable<void> ask_rspamd(const mail::Envelope& envelope, const mail::Message& message, Report& report) {
    report.rspamd_asked = true;
    rspamd::Request request;
    request.host = settings.rspamd.tcp.str();
    request.from = envelope.sender_str();
    for (const auto& r : envelope.recipients) request.rcpt.push_back(r.str());
    request.ip = envelope.client_ip;
    request.helo = envelope.helo;
    // rspamd makes no PTR lookup of its own: without a name it scores the
    // client as one without reverse DNS (HFILTER_HOSTNAME_UNKNOWN, RDNS_NONE).
    if (!envelope.client_ip.empty())
      request.hostname = envelope.client_name.empty() ? "unknown" : envelope.client_name;
    request.user = envelope.auth_user;
    request.content_length = message.size();
    const std::string head = rspamd::request_head(request);
    Answer a = co_await exchange(settings.rspamd, [&](auto& socket, Answer& out) {
      return checkv2(socket, head, message, out);
    });
    if (!a.error.empty()) {
      report.rspamd_error = settings.rspamd.str() + ": " + a.error;
    } else if (auto response = rspamd::parse_response(a.bytes); !response.ok()) {
      report.rspamd_error = response.error().message;
    } else if (response->status != 200) {
      report.rspamd_error = "HTTP status " + std::to_string(response->status);
    } else if (auto reply = rspamd::parse_reply(response->body); !reply.ok()) {
      report.rspamd_error = reply.error().message;
    } else {
      report.rspamd = std::move(reply).value();
    }
  }

  // Both daemons are asked at once (each fills its own part of the
  // report): the client waits for the slower one, not for the sum.
  net::awaitable<void> run(const mail::Envelope& envelope, const mail::Message& message,
                           std::function<void(Report)> done) {
    Report report;
    const bool clamd = settings.clamd.configured();
    const bool rspamd = settings.rspamd.configured();
    if (clamd && rspamd) {
      co_await (ask_clamd(message, report) && ask_rspamd(envelope, message, report));
    } else if (clamd) {
      co_await ask_clamd(message, report);
    } else if (rspamd) {
      co_await ask_rspamd(envelope, message, report);
    }
    done(std::move(report));
  }
};

Client::Client(config::Scan settings, asio::any_io_executor executor)
    : impl_(std::make_shared<Impl>(std::move(settings), std::move(executor))) {}

Client::~Client() = default;

OnFailure Client::on_failure() const {
  return impl_->settings.accept_on_failure ? OnFailure::accept : OnFailure::tempfail;
}

void Client::scan(const mail::Envelope& envelope, const mail::Message& message, std::function<void(Report)> done) {
  auto impl = impl_;
  asio::co_spawn(
      impl->executor,
      [impl, &envelope, &message, done = std::move(done)]() mutable -> net::awaitable<void> {
        co_await impl->run(envelope, message, std::move(done));
      },
      [](const std::exception_ptr& e) {
        if (e) log()->error("BUG: scan coroutine threw");
      });
}

}  // namespace hikyaku::scan
