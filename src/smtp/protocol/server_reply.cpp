#include "smtp/protocol/server_reply.hpp"

#include <algorithm>
#include <cctype>

namespace hikyaku::smtp::protocol {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string ServerReply::text() const {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += ' ';
    out += l;
  }
  return out;
}

std::vector<std::string_view> ServerReply::texts() const {
  std::vector<std::string_view> out;
  for (const auto& l : lines) {
    std::string_view v(l);
    out.push_back(v.size() > 4 ? v.substr(4) : std::string_view());
  }
  return out;
}

std::optional<std::string> parse_enhanced_status(std::string_view text) {
  // RFC 3463 §2: class "." subject "." detail; class 2, 4 or 5; subject and
  // detail 1-3 digits.
  if (text.size() < 5) return std::nullopt;
  if (text[0] != '2' && text[0] != '4' && text[0] != '5') return std::nullopt;
  if (text[1] != '.') return std::nullopt;
  size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    size_t start = i;
    while (i < text.size() && is_digit(text[i]) && i - start < 4) ++i;
    if (i == start || i - start > 3) return std::nullopt;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return std::nullopt;
      ++i;
    }
  }
  if (i < text.size() && text[i] != ' ' && text[i] != '\t') return std::nullopt;
  return std::string(text.substr(0, i));
}

ReplyParser::Status ReplyParser::feed(std::string_view line) {
  // RFC 5321 §4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
  //                 Reply-code [ SP textstring ] CRLF
  // The code is three digits, first 2-5, and the same on every line.
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
      line[0] < '2' || line[0] > '5') {
    error_ = "malformed reply line";
    return Status::error;
  }
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  char sep = line.size() > 3 ? line[3] : ' ';
  if (sep != ' ' && sep != '-') {
    error_ = "malformed reply line (no separator after the code)";
    return Status::error;
  }
  if (!reply_.lines.empty() && code != reply_.code) {
    error_ = "reply code changed inside a multi-line reply";
    return Status::error;
  }
  if (reply_.lines.size() >= kMaxReplyLines) {
    error_ = "reply has too many lines";
    return Status::error;
  }
  if (reply_.lines.empty()) {
    reply_.code = code;
    // RFC 2034 §4 / RFC 3463: the enhanced code leads the text; its class
    // must agree with the reply code's first digit or it is ignored.
    if (line.size() > 4) {
      auto st = parse_enhanced_status(line.substr(4));
      if (st && (*st)[0] == line[0]) reply_.status = *st;
    }
  }
  reply_.lines.emplace_back(line);
  return sep == '-' ? Status::need_more : Status::complete;
}

ServerReply ReplyParser::take() {
  ServerReply out = std::move(reply_);
  reply_ = ServerReply{};
  error_.clear();
  return out;
}

Capabilities Capabilities::parse(const ServerReply& ehlo) {
  Capabilities caps;
  auto texts = ehlo.texts();
  for (size_t i = 1; i < texts.size(); ++i) {  // line 0: "domain greeting"
    std::string_view t = texts[i];
    auto sp = t.find(' ');
    std::string keyword = upper(t.substr(0, sp));
    std::string_view params = sp == std::string_view::npos ? std::string_view() : t.substr(sp + 1);
    if (keyword == "PIPELINING") {
      caps.pipelining = true;  // RFC 2920
    } else if (keyword == "SIZE") {
      caps.size = true;  // RFC 1870 §4: optional limit, 0 = none
      uint64_t n = 0;
      bool ok = !params.empty();
      for (char c : params) {
        if (c == ' ') break;
        if (!is_digit(c) || n > (UINT64_MAX - 9) / 10) {
          ok = false;
          break;
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      caps.size_limit = ok ? n : 0;
    } else if (keyword == "8BITMIME") {
      caps.eightbitmime = true;
    } else if (keyword == "SMTPUTF8") {
      caps.smtputf8 = true;
    } else if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "ENHANCEDSTATUSCODES") {
      caps.enhanced_status_codes = true;
    } else if (keyword == "CHUNKING") {
      caps.chunking = true;
    } else if (keyword == "AUTH") {
      std::string_view rest = params;
      while (!rest.empty()) {
        auto e = rest.find(' ');
        auto m = rest.substr(0, e);
        if (!m.empty()) caps.auth.push_back(upper(m));
        rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 1);
      }
    }
  }
  return caps;
}

// The one encoding loop, producing (Out = std::string) or counting.
namespace {
struct Counter {
  uint64_t& n;
  void operator+=(char) { ++n; }
  void append(std::string_view text) { n += text.size(); }
};
}  // namespace

template <class Out>
void WireEncoder::content(std::string_view run, Out& out) {
  // RFC 5321 §4.5.3.1.6: at most 998 octets before the CRLF. A longer line
  // is broken with CRLF SPACE, as Postfix does (smtp_line_length_limit =
  // 998): in a header that is a folding, in a body the least damage to MIME.
  line_start_ = false;
  while (!run.empty()) {
    const size_t room = kMaxLineLength > line_length_ ? kMaxLineLength - line_length_ : 0;
    if (run.size() <= room) {
      out.append(run);
      line_length_ += run.size();
      last_ = run.back();
      return;
    }
    out.append(run.substr(0, room));
    out.append("\r\n ");
    run.remove_prefix(room);
    line_length_ = 1;
    last_ = ' ';
    ++broken_;
  }
}

template <class Out>
void WireEncoder::encode(std::string_view piece, Out& out) {
  const size_t n = piece.size();
  size_t pos = 0;
  if (n > 0) empty_ = false;
  while (pos < n) {
    const char c = piece[pos];
    // A CR is the line ending's only when an LF follows, which may be in
    // the next piece: it is held until then, so that the encoding does not
    // depend on where the pieces are cut.
    if (held_cr_) {
      held_cr_ = false;
      if (c != '\n') content("\r", out);  // a bare CR: text of the line
    }
    if (c == '\n') {
      out.append("\r\n");  // CRLF, or a bare LF made CRLF
      last_ = '\n';
      ++pos;
      line_start_ = true;
      line_length_ = 0;
      continue;
    }
    // RFC 5321 §4.5.2: "Before sending a line of mail text, the SMTP client
    // checks the first character of the line. If it is a period, one
    // additional period is inserted at the beginning of the line." It is
    // on the wire, so it counts towards the line's length.
    // Both modes count that dot: a line is broken where DATA would break it
    // however it is sent, so a text broken before that is known (to sign
    // it: delivery/forward_transform.cpp) is never broken again.
    if (line_start_ && c == '.') {
      if (mode_ == Mode::dot_stuffed) out += '.';
      ++line_length_;
    }
    // The rest of the line (or of this piece), a CR at its end held.
    const size_t lf = piece.find('\n', pos);
    size_t end = lf == std::string_view::npos ? n : lf;
    if (piece[end - 1] == '\r') {
      held_cr_ = true;
      --end;
    }
    if (end > pos) content(piece.substr(pos, end - pos), out);
    pos = held_cr_ ? end + 1 : end;
  }
}

void WireEncoder::add(std::string_view piece, std::string& out) { encode(piece, out); }

void WireEncoder::count(std::string_view piece) {
  Counter counter{counted_};
  encode(piece, counter);
}

void WireEncoder::finish(std::string& out) {
  // A CR at the very end was no line ending: text of the last line.
  if (held_cr_) {
    held_cr_ = false;
    content("\r", out);
  }
  // RFC 5321 §4.1.1.4: the terminator is CRLF.CRLF; the message's last
  // line must be ended before it (and before the end of a BDAT chunk).
  if (!empty_ && last_ != '\n') out += "\r\n";
  if (mode_ == Mode::dot_stuffed) out += ".\r\n";
}

uint64_t WireEncoder::counted_total() {
  std::string ending;
  finish(ending);
  return counted_ + ending.size();
}

uint64_t WireEncoder::size(std::string_view message, Mode mode) {
  WireEncoder encoder(mode);
  encoder.count(message);
  return encoder.counted_total();
}

namespace {
std::string encode_whole(std::string_view message, WireEncoder::Mode mode) {
  WireEncoder encoder(mode);
  std::string out;
  out.reserve(WireEncoder::size(message, mode));
  encoder.add(message, out);
  encoder.finish(out);
  return out;
}
}  // namespace

std::string dot_stuff(std::string_view message) { return encode_whole(message, WireEncoder::Mode::dot_stuffed); }

std::string crlf_lines(std::string_view message) { return encode_whole(message, WireEncoder::Mode::crlf_lines); }

bool has_8bit(std::string_view message) {
  for (char c : message)
    if (static_cast<unsigned char>(c) > 127) return true;
  return false;
}

}  // namespace hikyaku::smtp::protocol
