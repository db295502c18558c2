// Purpose:   The sans-I/O half of the SMTP client's conversation (used by
//            smtp/client): parsing the server's replies (single and
//            multi-line, enhanced status), the EHLO capability list, and the
//            DATA payload (dot-stuffing, 8-bit detection). No Asio here: it
//            builds and tests in seconds and is fuzzed (fuzz/smtp_reply_fuzz).
// Standards: RFC 5321 §4.2 (reply syntax, multi-line "250-"/"250 "),
//            §4.5.2 (transparency: dot-stuffing), §4.1.1.4 (DATA end),
//            RFC 3463 / RFC 2034 (enhanced status codes), RFC 1870 (SIZE),
//            RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3207 (STARTTLS),
//            RFC 2920 (PIPELINING).
// Trust:     parses untrusted network input. Lines are bounded by the
//            caller's line reader; a reply is bounded to kMaxReplyLines.
// Concurrency: plain values and pure functions.
// Errors:    a malformed reply is a value (ReplyParser::Status::error with a
//            reason), never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::smtp::protocol {

// One complete server reply.
struct ServerReply {
  int code = 0;                    // 200..599
  std::string status;              // "5.7.1" when the first line carries one, else ""
  std::vector<std::string> lines;  // raw lines as received, without CRLF

  bool positive() const { return code >= 200 && code < 300; }
  bool intermediate() const { return code >= 300 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // The reply exactly as the server said it, lines joined by one space:
  // "550-5.7.1 first 550 5.7.1 second" (Postfix joins the same way).
  std::string text() const;
  // Text of every line after the code and separator (for EHLO keywords).
  std::vector<std::string_view> texts() const;
};

// Accumulates the lines of one reply (RFC 5321 §4.2.1).
class ReplyParser {
 public:
  static constexpr size_t kMaxReplyLines = 200;
  enum class Status { complete, need_more, error };

  // Feed one line (without CRLF). After `complete`, take() the reply; after
  // `error`, error() says why and the connection must be dropped.
  Status feed(std::string_view line);
  ServerReply take();
  const std::string& error() const { return error_; }

 private:
  ServerReply reply_;
  std::string error_;
};

// "X.Y.Z" at the start of `text` with X in {2,4,5}, Y 0-999, Z 0-999
// (RFC 3463 §2), followed by a space or the end; nullopt otherwise.
std::optional<std::string> parse_enhanced_status(std::string_view text);

// The EHLO reply's extensions (RFC 5321 §4.1.1.1: the first line is the
// server's name; each further line is "KEYWORD [params]", case-insensitive).
struct Capabilities {
  bool pipelining = false;
  bool size = false;
  uint64_t size_limit = 0;  // 0: SIZE without a limit
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool starttls = false;
  bool enhanced_status_codes = false;
  bool chunking = false;
  std::vector<std::string> auth;  // mechanisms, upper-case

  static Capabilities parse(const ServerReply& ehlo);
};

// A message as it goes on the wire, encoded piece by piece as the message
// is read (from memory or, a large one, from its file), so that it is never
// copied whole:
// - dot_stuffed, RFC 5321 §4.5.2 (the DATA payload): a leading "." on any
//   line doubled, bare LF turned into CRLF, a CRLF added when the message
//   does not end in one, then ".\r\n";
// - crlf_lines, RFC 3030 §2 (a BDAT chunk): sent as is (no dot-stuffing)
//   but, without BINARYMIME, still CRLF lines: bare LF turned into CRLF and
//   a CRLF added when the message does not end in one.
// Both break a line longer than 998 octets (RFC 5321 §4.5.3.1.6) with
// CRLF SPACE every 998 octets, as Postfix's smtp_line_length_limit does
// (docs/smtp-client.md: it folds a header; in a body it changes the text
// and any DKIM body hash over it, so such a message may be refused), at
// the same places in both: a leading dot counts as the two DATA sends, so
// crlf_lines() of a message is a text that neither encoding breaks again.
// The pieces may be cut anywhere (inside a CRLF, before a dot).
class WireEncoder {
 public:
  enum class Mode { dot_stuffed, crlf_lines };
  explicit WireEncoder(Mode mode) : mode_(mode) {}

  // Appends to `out` the encoding of the message's next piece.
  void add(std::string_view piece, std::string& out);
  // Appends the ending (after the last piece).
  void finish(std::string& out);
  // The same, counting the encoding's octets instead of producing them
  // (BDAT's size); one encoder either produces or counts.
  void count(std::string_view piece);
  uint64_t counted_total();

  // The size of the whole encoding of a message in memory.
  static uint64_t size(std::string_view message, Mode mode);
  // Lines broken so far (for the log).
  uint64_t lines_broken() const { return broken_; }

  static constexpr size_t kMaxLineLength = 998;

 private:
  template <class Out>
  void encode(std::string_view piece, Out& out);
  template <class Out>
  void content(std::string_view run, Out& out);

  Mode mode_;
  bool line_start_ = true;
  size_t line_length_ = 0;  // octets of the current line on the wire so far
  bool held_cr_ = false;    // a CR that ended the last piece: line ending or text
  uint64_t broken_ = 0;
  char last_ = '\0';  // the message's last octet so far
  bool empty_ = true;
  uint64_t counted_ = 0;
};

// The whole encodings at once (small messages, tests).
std::string dot_stuff(std::string_view message);
std::string crlf_lines(std::string_view message);

// Does the message hold any octet above 127 (RFC 6152: BODY=8BITMIME)?
bool has_8bit(std::string_view message);

}  // namespace hikyaku::smtp::protocol
