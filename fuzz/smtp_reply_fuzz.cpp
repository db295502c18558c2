// libFuzzer target: the SMTP client's reply parser (smtp/protocol/server_reply.hpp,
// RFC 5321 §4.2), fed the input split into lines as the client's line reader
// delivers them (at LF, one CR before it dropped, lines over 8192 octets end
// the connection); every complete reply also goes through the EHLO capability
// parser (RFC 5321 §4.1.1.1), and the whole input through dot_stuff (§4.5.2).
// Invariants: a complete reply has a code 200..599 that every line starts
// with, 1..kMaxReplyLines lines, "-" on all but the last, an enhanced status
// of its own class or none; an error has a reason; AUTH mechanisms are
// non-empty upper-case words; the DATA payload ends in the only CRLF.CRLF,
// has no bare LF, no line over 998 octets, and equals a reference encoding
// (stuffed dots, lines broken with CRLF SPACE every 998 octets); crlf_lines()
// (the BDAT chunk) is the same without the stuffing and the terminator; the
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
  // The reference: each line's text (a CR before its LF is the line
  // ending; any other CR is text), a dot doubled at its start, broken into
  // 998 octets then CRLF SPACE and 997 more (RFC 5321 §4.5.3.1.6, Postfix's
  // smtp_line_length_limit), the doubled dot dropped again (BDAT only: it
  // breaks where DATA does), CRLF; the last line ended.
  auto reference = [&](bool stuffed) {
    std::string want;
    size_t start = 0;
    while (start < message.size()) {
      size_t lf = message.find('\n', start);
      const bool ended = lf != std::string_view::npos;
      size_t stop = ended ? lf : message.size();
      std::string_view text = message.substr(start, stop - start);
      if (ended && text.ends_with('\r')) text.remove_suffix(1);
      std::string line = (text.starts_with('.') ? "." : "") + std::string(text);
      std::string broken = line.substr(0, 998);
      for (size_t at = 998; at < line.size(); at += 997) broken += "\r\n " + line.substr(at, 997);
      if (!stuffed && text.starts_with('.')) broken.erase(0, 1);
      want += broken + "\r\n";
      start = ended ? lf + 1 : message.size();
    }
    if (stuffed) want += ".\r\n";
    return want;
  };
  if (out != reference(true)) __builtin_trap();
  if (crlf_lines(message) != reference(false)) __builtin_trap();
  // The wire form is final: neither encoding changes it again (what
  // delivery::ForwardTransform signs is what arrives).
  const std::string wire_form = crlf_lines(message);
  if (crlf_lines(wire_form) != wire_form || dot_stuff(wire_form) != out) __builtin_trap();
  // No line on the wire is longer than 998 octets before its CRLF.
  for (size_t start = 0, crlf = out.find("\r\n"); crlf != std::string::npos; crlf = out.find("\r\n", start)) {
    if (crlf - start > 998) __builtin_trap();
    start = crlf + 2;
  }
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
      if (out.size() > 2 * piece.size() + 4) __builtin_trap();
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
