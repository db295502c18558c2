#include "scan/client.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <type_traits>

#include "base/log.hpp"
#include "base/strings.hpp"
#include "mail/mime.hpp"
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

// One length-prefixed INSTREAM chunk; false (and `error`) on failure.
template <class Socket>
net::awaitable<bool> write_chunk(Socket& socket, std::string_view piece, std::string& error) {
  // Awaited outside conditions, on named objects (GCC 12, docs/STYLE.md).
  const std::string header = clamd::chunk_header(static_cast<uint32_t>(piece.size()));
  const bool header_written = co_await write_all(socket, header, error);
  if (!header_written) co_return false;
  const bool piece_written = co_await write_all(socket, piece, error);
  co_return piece_written;
}

// The zero-length end of an INSTREAM, then clamd's one reply.
template <class Socket>
net::awaitable<void> end_instream(Socket& socket, Answer& out) {
  const std::string end = clamd::chunk_header(0);
  const bool written = co_await write_all(socket, end, out.error);
  if (!written) co_return;
  co_await read_answer(socket, clamd::kMaxReply, true, out);
}

// Runs `work` on the blocking pool and resumes on the loop; when `here`,
// runs it on the loop instead (work too small for the trip). `work`
// touches no socket and nothing else of the loop's: only what the awaiting
// coroutine's frame holds (it waits there until `work` is done, so what
// `work` reads and writes outlives it).
template <class Work>
net::awaitable<void> on_pool(asio::thread_pool& blocking, Work work, bool here = false) {
  if (here) {
    work();
    co_return;
  }
  auto task = [&work]() -> net::awaitable<void> {
    work();
    co_return;
  };
  co_await asio::co_spawn(blocking, task, use_awaitable);
}

// The next piece of `message` from `cursor` (as MessageCursor::next()): a
// message with a body file has its pieces read on the blocking pool (the
// loop never waits for the page cache or the disk), one in memory at once.
net::awaitable<base::Result<bool>> next_piece(asio::thread_pool& blocking, const mail::Message& message,
                                              mail::MessageCursor& cursor, std::string_view& piece) {
  base::Result<bool> more = false;
  co_await on_pool(blocking, [&] { more = cursor.next(piece); }, !message.body);
  co_return more;
}

// `octets` in length-prefixed INSTREAM chunks; false (and `error`) on
// failure.
template <class Socket>
net::awaitable<bool> write_chunks(Socket& socket, std::string_view octets, std::string& error) {
  while (!octets.empty()) {
    const std::string_view piece = octets.substr(0, clamd::kChunk);
    octets.remove_prefix(piece.size());
    const bool written = co_await write_chunk(socket, piece, error);
    if (!written) co_return false;
  }
  co_return true;
}

// clamd INSTREAM: the command, the message in length-prefixed chunks, the
// zero-length end; then its one reply.
template <class Socket>
net::awaitable<void> instream(Socket& socket, asio::thread_pool& blocking, const mail::Message& message,
                              Answer& out) {
  const std::string_view command = clamd::kInstream;
  const bool started = co_await write_all(socket, command, out.error);
  if (!started) co_return;
  mail::MessageCursor cursor(message);
  std::string_view piece;
  while (true) {
    auto more = co_await next_piece(blocking, message, cursor, piece);
    if (!more.ok()) {
      out.error = "reading the message: " + more.error().message;
      co_return;
    }
    if (!*more) break;
    const bool written = co_await write_chunks(socket, piece, out.error);
    if (!written) co_return;
  }
  co_await end_instream(socket, out);
}

// clamd INSTREAM of one attachment's decoded octets.
template <class Socket>
net::awaitable<void> instream_octets(Socket& socket, std::string_view octets, Answer& out) {
  const std::string_view command = clamd::kInstream;
  const bool started = co_await write_all(socket, command, out.error);
  if (!started) co_return;
  const bool written = co_await write_chunks(socket, octets, out.error);
  if (!written) co_return;
  co_await end_instream(socket, out);
}

// A large message's body file mapped read-only, for the MIME walker
// (clamd_scope = "attachments"): the walker needs the body as one text, and
// a mapping costs page cache, not the server's memory (issue 12 item 6).
class MappedBody {
 public:
  MappedBody() = default;
  MappedBody(const MappedBody&) = delete;
  MappedBody& operator=(const MappedBody&) = delete;
  ~MappedBody() { unmap(); }

  // Maps `range`; "" or why not.
  std::string map(const mail::FileRange& range) {
    if (range.size == 0) return "";
    const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t start = range.offset - range.offset % page;
    length_ = static_cast<size_t>(range.size + (range.offset - start));
    void* p = ::mmap(nullptr, length_, PROT_READ, MAP_PRIVATE, range.file->get(), static_cast<off_t>(start));
    if (p == MAP_FAILED) return "mmap " + range.path.string() + ": " + std::strerror(errno);
    base_ = p;
    view_ = std::string_view(static_cast<const char*>(p) + (range.offset - start), static_cast<size_t>(range.size));
    return "";
  }
  std::string_view view() const { return view_; }
  void unmap() {
    if (base_ != nullptr) ::munmap(base_, length_);
    base_ = nullptr;
    view_ = {};
  }

 private:
  void* base_ = nullptr;
  size_t length_ = 0;
  std::string_view view_;
};

// rspamd: the request head, the message as body, then the whole response.
template <class Socket>
net::awaitable<void> checkv2(Socket& socket, asio::thread_pool& blocking, const std::string& head,
                             const mail::Message& message, Answer& out) {
  const bool started = co_await write_all(socket, head, out.error);
  if (!started) co_return;
  mail::MessageCursor cursor(message);
  std::string_view piece;
  while (true) {
    auto more = co_await next_piece(blocking, message, cursor, piece);
    if (!more.ok()) {
      out.error = "reading the message: " + more.error().message;
      co_return;
    }
    if (!*more) break;
    const bool written = co_await write_all(socket, piece, out.error);
    if (!written) co_return;
  }
  co_await read_answer(socket, rspamd::kMaxResponse, false, out);
}

// What the MIME walk of a message found (clamd_scope = "attachments"). The
// views of `found` point into `mapped` or into the message's text.
struct Walk {
  MappedBody mapped;
  std::string map_error;  // "" unless the body file could not be mapped
  mail::mime::Attachments found;
};

// The walk, on the blocking pool: a large message's body file mapped
// (its pages read as the walker touches them), the MIME tree parsed, the
// attachments found. The tree is dropped here: the attachments it gave
// view the message, not the tree.
void walk_message(const mail::Message& message, Walk& walk) {
  std::string_view header = message.text;
  std::string_view body;
  if (message.body) {
    walk.map_error = walk.mapped.map(*message.body);
    if (!walk.map_error.empty()) return;
    body = walk.mapped.view();
  } else {
    const mail::mime::HeaderBody split = mail::mime::split_entity(message.text);
    header = split.header;
    body = split.body;
  }
  const mail::mime::Tree tree = mail::mime::parse(header, body);
  walk.found = mail::mime::find_attachments(tree);
}

}  // namespace

struct Client::Impl : std::enable_shared_from_this<Impl> {
  Impl(config::Scan s, asio::any_io_executor ex, asio::thread_pool& pool)
      : settings(std::move(s)), executor(std::move(ex)), blocking(pool) {}

  config::Scan settings;
  asio::any_io_executor executor;  // the loop: sockets, timers, `done`
  asio::thread_pool& blocking;     // the MIME walk, decoding, body file reads

  using Deadline = std::chrono::steady_clock::time_point;

  // Connects to `service` and runs `talk` on the socket, all before
  // `deadline` (the [scan] timeout from the start of the scan).
  template <class Talk>
  net::awaitable<Answer> exchange(const config::ScanService& service, Deadline deadline, Talk talk) {
    Answer out;
    asio::steady_timer timer(executor);
    timer.expires_at(deadline);
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

  // The whole message in one INSTREAM (clamd_scope = "message").
  net::awaitable<void> ask_clamd_whole(const mail::Message& message, Deadline deadline, Report& report) {
    auto talk = [&](auto& socket, Answer& out) { return instream(socket, blocking, message, out); };
    Answer a = co_await exchange(settings.clamd, deadline, talk);
    if (!a.error.empty()) {
      report.clamd.kind = clamd::Reply::Kind::error;
      report.clamd.detail = settings.clamd.str() + ": " + a.error;
    } else {
      report.clamd = clamd::parse_reply(a.bytes);
    }
  }

  // clamd_scope = "attachments": each attachment (mail::mime::
  // find_attachments() has the rule), decoded, in an INSTREAM of its own on
  // a connection of its own (clamd answers one command per connection
  // outside a session), one after another within the one timeout; the
  // first FOUND or failure ends the scan. A message without attachments is
  // not sent at all; one the walker cannot read whole is sent whole.
  // The walk and each decoding run on the blocking pool (base64 decodes at
  // several hundred MB/s: a 25 MB attachment, clamd's StreamMaxLength,
  // would hold the loop for tens of ms), one attachment at a time, so that
  // at most one decoded copy is held; the loop keeps the sockets. A message
  // held in memory and at most kWalkOnLoop long is walked and decoded on the
  // loop: that takes microseconds, less than the trip to the pool and back.
  static constexpr size_t kWalkOnLoop = 64 * 1024;
  net::awaitable<void> ask_clamd_attachments(const mail::Message& message, Deadline deadline, Report& report) {
    const bool on_loop = !message.body && message.text.size() <= kWalkOnLoop;
    Walk walk;
    co_await on_pool(blocking, [&message, &walk] { walk_message(message, walk); }, on_loop);
    if (!walk.map_error.empty()) {
      log()->warn("clamd_scope = attachments: {}; the whole message is sent", walk.map_error);
      co_await ask_clamd_whole(message, deadline, report);
      co_return;
    }
    if (walk.found.whole_message) {
      co_await ask_clamd_whole(message, deadline, report);
      if (report.clamd.kind == clamd::Reply::Kind::clean) report.clamd.detail = "sent whole: " + walk.found.why;
    } else {
      co_await send_attachments(walk.found, on_loop, deadline, report);
    }
    // Unmapped on the pool too: a large mapping's teardown is not free.
    co_await on_pool(blocking, [&walk] { walk.mapped.unmap(); }, !message.body);
  }

  // Each attachment of `found`, decoded (on the blocking pool unless
  // `on_loop`) into a buffer that lives until its INSTREAM is answered.
  net::awaitable<void> send_attachments(const mail::mime::Attachments& found, bool on_loop, Deadline deadline,
                                        Report& report) {
    size_t sent = 0;
    for (const mail::mime::Attachment& part : found.parts) {
      std::string storage;
      std::string_view octets;
      co_await on_pool(blocking, [&part, &storage, &octets] { octets = mail::mime::content(part, storage); }, on_loop);
      auto talk = [&](auto& socket, Answer& out) { return instream_octets(socket, octets, out); };
      Answer a = co_await exchange(settings.clamd, deadline, talk);
      if (!a.error.empty()) {
        report.clamd.kind = clamd::Reply::Kind::error;
        report.clamd.detail = settings.clamd.str() + ": " + a.error;
        co_return;
      }
      report.clamd = clamd::parse_reply(a.bytes);
      ++sent;
      if (report.clamd.kind != clamd::Reply::Kind::clean) {
        if (report.clamd.kind == clamd::Reply::Kind::found && !part.filename.empty())
          report.clamd.detail += " in \"" + base::log_printable(part.filename.substr(0, 100)) + "\"";
        co_return;
      }
    }
    report.clamd.kind = clamd::Reply::Kind::clean;
    report.clamd.detail = sent == 0 ? "no attachment: clamd not asked"
                                    : std::to_string(sent) + (sent == 1 ? " attachment" : " attachments");
  }

  net::awaitable<void> ask_clamd(const mail::Message& message, Report& report) {
    report.clamd_asked = true;
    const Deadline deadline = std::chrono::steady_clock::now() + settings.timeout;
    if (settings.clamd_scope == config::Scan::ClamdScope::attachments) {
      co_await ask_clamd_attachments(message, deadline, report);
    } else {
      co_await ask_clamd_whole(message, deadline, report);
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
    const Deadline deadline = std::chrono::steady_clock::now() + settings.timeout;
    Answer a = co_await exchange(settings.rspamd, deadline, [&](auto& socket, Answer& out) {
      return checkv2(socket, blocking, head, message, out);
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
  net::awaitable<Report> run(const mail::Envelope& envelope, const mail::Message& message) {
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
    co_return report;
  }

  // What a scan that threw reports (a bug, or an exception from Asio or
  // the allocator): every configured scanner failed, so [scan] on_failure
  // decides, as for a daemon that is down.
  Report failed(const std::string& why) const {
    Report report;
    if (settings.clamd.configured()) {
      report.clamd_asked = true;
      report.clamd = {clamd::Reply::Kind::error, why};
    }
    if (settings.rspamd.configured()) {
      report.rspamd_asked = true;
      report.rspamd_error = why;
    }
    return report;
  }
};

Client::Client(config::Scan settings, asio::any_io_executor executor, asio::thread_pool& blocking)
    : impl_(std::make_shared<Impl>(std::move(settings), std::move(executor), blocking)) {}

Client::~Client() = default;

OnFailure Client::on_failure() const {
  return impl_->settings.accept_on_failure ? OnFailure::accept : OnFailure::tempfail;
}

void Client::scan(const mail::Envelope& envelope, const mail::Message& message, std::function<void(Report)> done) {
  auto impl = impl_;
  // `done` is called exactly once, also when the scan throws: a session
  // waiting for its verdict must get an answer (on_failure's), not a
  // dropped connection. Taken out of its holder before it is called, so
  // an exception from `done` itself does not call it again.
  auto holder = std::make_shared<std::function<void(Report)>>(std::move(done));
  asio::co_spawn(
      impl->executor,
      [impl, &envelope, &message, holder]() -> net::awaitable<Report> {
        co_return co_await impl->run(envelope, message);
      },
      [impl, holder](const std::exception_ptr& e, Report report) {
        std::string why;
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            why = ex.what();
          } catch (...) {
            why = "unknown exception";
          }
          log()->error("BUG: scan coroutine threw: {}", base::log_printable(why));
          report = impl->failed("internal error");
        }
        if (!*holder) return;
        auto call = std::move(*holder);
        *holder = nullptr;
        call(std::move(report));
      });
}

}  // namespace hikyaku::scan
