#include "smtp/protocol/data_reader.hpp"

#include <algorithm>

#include "base/strings.hpp"
#include "mail/message.hpp"
#include "smtp/protocol/replies.hpp"

namespace hikyaku::smtp::protocol {
namespace {

// RFC 5322 §3.6.7 trace field "Received:"; obsolete syntax (§4.5.3 of RFC 5322
// obs-optional) allows white space before the colon.
bool is_received_field(std::string_view line) {
  if (!base::istarts_with(line, "received")) return false;
  line.remove_prefix(8);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  return !line.empty() && line.front() == ':';
}

// A header field line: a field name (printable, no colon) then ':', or a
// folded continuation starting with WSP (RFC 5322 §2.2, §2.2.3).
bool looks_like_header(std::string_view line) {
  if (line.empty()) return false;
  if (line.front() == ' ' || line.front() == '\t') return true;
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  for (char c : line.substr(0, colon)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126) return u == ' ' || u == '\t';  // obs: WSP before colon
  }
  return true;
}

}  // namespace

DataReader::DataReader(Limits limits, std::string prefix) : limits_(limits), message_(std::move(prefix)) {
  line_start_ = prefix_size_ = message_.size();
  if (limits_.size_hint > 0) {
    uint64_t held = std::min(limits_.size_hint, limits_.max_size);
    // Spilling holds at most the header section and spill_at octets of body
    // (plus the line being read).
    if (limits_.spill_at > 0) held = std::min<uint64_t>(held, limits_.spill_at + 64 * 1024);
    message_.reserve(message_.size() + held + kHeadroom);
  }
}

void DataReader::stop_storing() {
  message_.clear();
  message_.shrink_to_fit();
}

bool DataReader::spill_due() const {
  return storing() && head_end_ != std::string::npos && message_.size() - head_end_ > limits_.spill_at &&
         limits_.spill_at > 0;
}

std::string_view DataReader::body_held() const {
  if (!storing() || head_end_ == std::string::npos) return {};
  return std::string_view(message_).substr(head_end_);
}

void DataReader::forget_body_held() {
  if (!storing() || head_end_ == std::string::npos) return;
  message_.resize(head_end_);
  line_start_ = std::min(line_start_, message_.size());
  spilled_ = true;
}

// Append one content byte of the current line.
void DataReader::put(char c) {
  ++line_len_;
  ++size_;
  if (size_ > limits_.max_size) {
    // RFC 5321 §4.5.3.1.7: keep reading to the end, but stop storing.
    if (!overflow_) {
      if (storing()) stop_storing();
      overflow_ = true;
    }
    return;
  }
  if (!storing()) return;
  if (in_header_ && limits_.spill_at > 0 && message_.size() - prefix_size_ >= mail::kMaxHeaderSection) {
    header_overflow_ = true;  // a header section that could not be spilled
    stop_storing();
    return;
  }
  message_.push_back(c);
}

// A CRLF ended the current line (its content is already in message_).
void DataReader::end_line() {
  size_ += 2;
  if (!overflow_ && size_ > limits_.max_size) {
    if (storing()) stop_storing();
    overflow_ = true;
  }
  if (storing()) {
    bool blank_line = false;
    if (in_header_) {
      std::string_view line(message_.data() + line_start_, message_.size() - line_start_);
      if (line.empty() || !looks_like_header(line)) {
        in_header_ = false;  // RFC 5322 §2.1: the header ends at the first empty line
        blank_line = line.empty();
        // Not a header field: this line is the body's first.
        if (!blank_line) head_end_ = line_start_;
      } else if (is_received_field(line)) {
        ++received_;  // RFC 5321 §6.3: count hops to detect loops
      }
    }
    message_ += "\r\n";
    line_start_ = message_.size();
    if (blank_line) head_end_ = message_.size();
  }
  line_len_ = 0;
}

size_t DataReader::feed(std::string_view data) {
  size_t i = 0;
  while (i < data.size() && !done_) {
    char c = data[i++];
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') {
        // A real CRLF. RFC 5321 §4.1.1.4: a line holding only "." ends the
        // data; since lines end only at CRLF, the dot is preceded by CRLF
        // (or by the CRLF of the DATA command itself).
        if (line_len_ == 1 && line_dot_) {
          done_ = true;
          break;
        }
        line_dot_ = false;
        end_line();
        continue;
      }
      // RFC 5321 §2.3.8: CR only as part of CRLF. A bare CR is refused, and
      // it is NOT a line end: "\r.\r" can never end the data.
      bare_cr_ = true;
      put('\r');
    }
    if (c == '\r') {
      pending_cr_ = true;
      continue;
    }
    if (c == '\n') {
      // Bare LF: refused, and NOT a line end ("\n.\n" smuggling).
      bare_lf_ = true;
      put('\n');
      continue;
    }
    if (c == '.' && line_len_ == 0 && !line_dot_) {
      // RFC 5321 §4.5.2: a leading dot is removed (transparency); remember it
      // in case the line is the lone "." that ends the data.
      line_dot_ = true;
      ++line_len_;
      continue;
    }
    put(c);
  }
  return i;
}

DataReader::Outcome DataReader::outcome() const {
  // Smuggling first: a message with bare CR/LF is refused whatever else is wrong.
  if (bare_lf_) return Outcome::bare_lf;
  if (bare_cr_) return Outcome::bare_cr;
  if (overflow_) return Outcome::too_big;
  if (header_overflow_) return Outcome::header_too_big;
  if (received_ > limits_.max_received) return Outcome::too_many_hops;
  return Outcome::ok;
}

mail::Reply DataReader::reply() const {
  switch (outcome()) {
    case Outcome::bare_lf: return reply::bare_lf();
    case Outcome::bare_cr: return reply::bare_cr();
    case Outcome::too_big: return reply::message_too_big();
    case Outcome::header_too_big: return reply::header_too_big();
    case Outcome::too_many_hops: return reply::too_many_hops();
    case Outcome::ok: break;
  }
  return reply::ok();
}

std::string_view DataReader::outcome_name(Outcome o) {
  switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::bare_lf: return "bare LF";
    case Outcome::bare_cr: return "bare CR";
    case Outcome::too_big: return "message too big";
    case Outcome::header_too_big: return "header section too big";
    case Outcome::too_many_hops: return "too many Received headers";
  }
  return "?";
}

}  // namespace hikyaku::smtp::protocol
