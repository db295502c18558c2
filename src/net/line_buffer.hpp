// Purpose:   Sans-I/O line splitting for the line-based protocols (SMTP,
//            POP3, IMAP): bytes go in, complete lines come out, with bare-LF
//            detection and a hard length limit.
// Standards: RFC 5321 §2.3.8 (lines end in CRLF), §4.5.3.1.4-6 (limits).
// Trust:     untrusted input; memory bounded by max_line plus one read.
#pragma once

#include <string>
#include <string_view>

namespace hikyaku::net {

class LineBuffer {
 public:
  explicit LineBuffer(size_t max_line) : max_line_(max_line) {}

  enum class Status { line, need_more, too_long };
  // Extract the next line (without CRLF/LF) if the buffer holds one. A line
  // longer than max_line yields too_long once; its bytes up to the next LF
  // are then discarded.
  Status next(std::string& line, bool& bare_lf);
  void append(std::string_view data) { data_.append(data); }
  // Hand out and forget buffered bytes (used when DATA starts).
  std::string take();
  void clear() { data_.clear(); discarding_ = false; }
  bool empty() const { return data_.empty(); }

 private:
  std::string data_;
  size_t max_line_;
  bool discarding_ = false;
};

}  // namespace hikyaku::net
