// Purpose:   Sans-I/O framing of IMAP client input: bytes in, whole commands
//            out. A command is one line, or several lines joined by literals
//            ("{n}" / "{n+}" at the end of a line, then n octets; a literal8
//            "~{n}" is framed the same way, the "~" stays for the parser). The framed
//            command keeps the literals inline ("{n}\r\n<n octets>") so the
//            parser sees one string. The framer says when a synchronising
//            literal needs the "+" continuation request.
// Standards: RFC 3501 §2.2.1 (continuation), §4.3 (literals), §7.5;
//            RFC 7888 (LITERAL+: "{n+}" needs no continuation); RFC 3516
//            §4.3 / RFC 4466 §4 (literal8 "~{n}", which may carry NUL).
// Trust:     untrusted input; memory bounded by max_line per line and
//            max_literal per literal, and a whole command (its lines and
//            all its literals) by max_literal + max_line, so that a command
//            of many literals cannot grow without bound; over-long input is
//            skipped, not kept. The limit can change between commands
//            (set_max_literal: the session allows only small literals
//            before login).
// Concurrency: one Framer per connection, one thread at a time.
// Errors:    statuses, never exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hikyaku::imap::protocol {

class Framer {
 public:
  Framer(size_t max_line, uint64_t max_literal) : max_line_(max_line), max_literal_(max_literal) {}

  enum class Status {
    command,       // `out` holds one complete command (without the final CRLF)
    need_more,     // feed more bytes
    continuation,  // a synchronising literal was announced: send "+ ..." and feed more
    too_long,      // a line was longer than max_line: `out` holds its start (for the tag)
    too_large,     // a literal over max_literal, or one that would take the
                   // command over max_literal + max_line: `out` holds the
                   // command so far
                   // (a synchronising one is refused before the client sends it;
                   // a LITERAL+ one is skipped)
  };
  void append(std::string_view data) { data_.append(data); }
  Status next(std::string& out);
  // Forget everything buffered (STARTTLS: RFC 3501 §6.2.1 / RFC 2595 §3.1).
  void clear();
  bool empty() const { return data_.size() == pos_; }
  // A command has begun and is not complete (a part of its line, or a
  // literal, has come; or a refused literal's octets are being dropped).
  bool in_command() const { return !empty() || !current_.empty() || literal_left_ > 0 || skip_left_ > 0; }
  // The largest literal taken from the next one announced on.
  void set_max_literal(uint64_t max_literal) { max_literal_ = max_literal; }
  // Give back spare buffer capacity (kept otherwise, e.g. after an APPEND of
  // megabytes): for a connection about to wait long, as in IDLE.
  void shrink();

 private:
  void compact();
  std::string data_;
  size_t pos_ = 0;           // consumed prefix of data_
  std::string current_;      // the command being assembled
  uint64_t literal_left_ = 0;
  uint64_t skip_left_ = 0;   // octets of a refused LITERAL+ literal to drop
  bool discarding_ = false;  // dropping the rest of an over-long line
  size_t max_line_;
  uint64_t max_literal_;
};

// If `line` ends in "{n}" or "{n+}", its size and whether it is LITERAL+.
bool literal_at_end(std::string_view line, uint64_t& size, bool& non_sync);

}  // namespace hikyaku::imap::protocol
