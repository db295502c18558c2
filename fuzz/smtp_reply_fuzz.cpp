// libFuzzer target: the SMTP client's reply parser (smtp/protocol/server_reply.hpp,
// RFC 5321 §4.2), fed the input split into lines as the client's line reader
// delivers them (at LF, one CR before it dropped, lines over 8192 octets end
// the connection); every complete reply also goes through the EHLO capability
// parser (RFC 5321 §4.1.1.1), and the whole input through dot_stuff (§4.5.2).
// Invariants: a complete reply has a code 200..599 that every line starts
// with, 1..kMaxReplyLines lines, "-" on all but the last, an enhanced status
// of its own class or none; an error has a reason; AUTH mechanisms are
// non-empty upper-case words; the DATA payload ends in the only CRLF.CRLF,
// has no bare LF, and un-stuffs to the message; crlf_lines() (the BDAT
// chunk) is that message without the stuffing and the terminator; the
// WireEncoder's pieces join into the same bytes and counting predicts them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/protocol/server_reply.hpp"

namespace {

using namespace hikyaku::smtp::protocol;

constexpr size_t kMaxLine = 8192;  // smtp::client::ClientOptions::max_line

void check_reply(const ServerReply& r) {
  if (r.code < 200 || r.code > 599) __builtin_trap();
  if (r.lines.empty() || r.lines.size() > ReplyParser::kMaxReplyLines) __builtin_trap();
  const std::string code = std::to_string(r.code);
  for (size_t i = 0; i < r.lines.size(); ++i) {
    std::string_view l = r.lines[i];
    if (l.size() < 3 || l.substr(0, 3) != code) __builtin_trap();
    const bool last = i + 1 == r.lines.size();
    if (!last && (l.size() < 4 || l[3] != '-')) __builtin_trap();
    if (last && l.size() > 3 && l[3] != ' ') __builtin_trap();
  }
  if (!r.status.empty()) {
    if (r.status[0] != code[0] || parse_enhanced_status(r.status) != r.status) __builtin_trap();
  }
  const int classes = r.positive() + r.intermediate() + r.transient() + r.permanent();
  if (classes != 1) __builtin_trap();
  if (r.texts().size() != r.lines.size() || r.text().size() < r.lines.front().size()) __builtin_trap();

  // As if it answered EHLO.
  auto caps = Capabilities::parse(r);
  if (!caps.size && caps.size_limit != 0) __builtin_trap();
  for (const auto& m : caps.auth) {
    if (m.empty()) __builtin_trap();
    for (char c : m)
      if (c == ' ' || (c >= 'a' && c <= 'z')) __builtin_trap();
  }
}

void check_dot_stuff(std::string_view message) {
  const std::string out = dot_stuff(message);
  (void)has_8bit(message);
  // The terminator, and nothing before it that a server would take for one.
  if (message.empty()) {
    if (out != ".\r\n" || !crlf_lines(message).empty()) __builtin_trap();
    return;
  }
  if (out.size() < 5 || out.compare(out.size() - 5, 5, "\r\n.\r\n") != 0) __builtin_trap();
  if (out.find("\r\n.\r\n") != out.size() - 5 || out.starts_with(".\r\n")) __builtin_trap();
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r')) __builtin_trap();
  // Un-stuffing gives the message back, bare LFs as CRLF, ended by a CRLF.
  std::string want;
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\n' && (i == 0 || message[i - 1] != '\r')) want += '\r';
    want += message[i];
  }
  if (!want.ends_with('\n')) want += "\r\n";
  // The BDAT chunk (RFC 3030) is exactly that: the message in CRLF lines.
  if (crlf_lines(message) != want) __builtin_trap();
  std::string back;
  std::string_view body(out.data(), out.size() - 3);  // without ".\r\n"
  while (!body.empty()) {
    size_t lf = body.find('\n');
    size_t n = lf == std::string_view::npos ? body.size() : lf + 1;
    std::string_view line = body.substr(0, n);
    body.remove_prefix(n);
    if (line.starts_with('.')) line.remove_prefix(1);
    back += line;
  }
  if (back != want) __builtin_trap();
  // In pieces (how the client sends a large message), the same bytes.
  for (auto mode : {WireEncoder::Mode::dot_stuffed, WireEncoder::Mode::crlf_lines}) {
    const std::string whole = mode == WireEncoder::Mode::dot_stuffed ? out : crlf_lines(message);
    if (WireEncoder::size(message, mode) != whole.size()) __builtin_trap();
    WireEncoder encoder(mode);
    WireEncoder counter(mode);
    std::string joined;
    const size_t max = 1 + message.size() % 13;
    for (size_t at = 0; at < message.size(); at += max) {
      const std::string_view piece = message.substr(at, max);
      std::string out;
      encoder.add(piece, out);
      if (out.size() > 2 * piece.size()) __builtin_trap();
      joined += out;
      counter.count(piece);
    }
    encoder.finish(joined);
    if (joined != whole || counter.counted_total() != whole.size()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);

  ReplyParser parser;
  size_t pending = 0;  // lines fed to the reply being read
  while (true) {
    size_t lf = in.find('\n');
    if (lf == std::string_view::npos) break;  // no complete line: the reader waits
    std::string_view line = in.substr(0, lf);
    in.remove_prefix(lf + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.size() > kMaxLine) break;  // "reply line too long": connection dropped
    auto st = parser.feed(line);
    ++pending;
    if (st == ReplyParser::Status::complete) {
      auto reply = parser.take();
      if (reply.lines.size() != pending || !parser.error().empty()) __builtin_trap();
      check_reply(reply);
      pending = 0;
    } else if (st == ReplyParser::Status::error) {
      if (parser.error().empty()) __builtin_trap();
      break;  // the client drops the connection
    } else if (pending > ReplyParser::kMaxReplyLines) {
      __builtin_trap();  // the line bound must have stopped it
    }
  }
  check_dot_stuff(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
