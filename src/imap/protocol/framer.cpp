#include "imap/protocol/framer.hpp"

#include <algorithm>

namespace hikyaku::imap::protocol {

bool literal_at_end(std::string_view line, uint64_t& size, bool& non_sync) {
  if (line.size() < 3 || line.back() != '}') return false;
  size_t open = line.rfind('{');
  if (open == std::string_view::npos) return false;
  std::string_view inner = line.substr(open + 1, line.size() - open - 2);
  non_sync = !inner.empty() && inner.back() == '+';
  if (non_sync) inner.remove_suffix(1);
  if (inner.empty() || inner.size() > 19) return false;
  uint64_t n = 0;
  for (char c : inner) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  size = n;
  return true;
}

void Framer::clear() {
  data_.clear();
  pos_ = 0;
  current_.clear();
  literal_left_ = skip_left_ = 0;
  discarding_ = false;
}

void Framer::shrink() {
  data_.erase(0, pos_);
  pos_ = 0;
  data_.shrink_to_fit();
  current_.shrink_to_fit();
}

void Framer::compact() {
  if (pos_ > 65536 || pos_ == data_.size()) {
    data_.erase(0, pos_);
    pos_ = 0;
  }
}

Framer::Status Framer::next(std::string& out) {
  for (;;) {
    // Octets of a refused non-synchronising literal are dropped.
    if (skip_left_ > 0) {
      uint64_t n = std::min<uint64_t>(skip_left_, data_.size() - pos_);
      pos_ += n;
      skip_left_ -= n;
      compact();
      if (skip_left_ > 0) return Status::need_more;
      discarding_ = true;  // the rest of that command line goes too
    }
    // Literal octets are taken as they are (they may hold CR, LF, NUL).
    if (literal_left_ > 0) {
      uint64_t n = std::min<uint64_t>(literal_left_, data_.size() - pos_);
      current_.append(data_, pos_, n);
      pos_ += n;
      literal_left_ -= n;
      compact();
      if (literal_left_ > 0) return Status::need_more;
    }
    size_t lf = data_.find('\n', pos_);
    if (lf == std::string::npos) {
      if (!discarding_ && data_.size() - pos_ > max_line_) {
        out = current_ + data_.substr(pos_, 256);
        current_.clear();
        discarding_ = true;
        pos_ = data_.size();
        compact();
        return Status::too_long;
      }
      if (discarding_) {
        pos_ = data_.size();
        compact();
      }
      return Status::need_more;
    }
    std::string_view line(data_.data() + pos_, lf - pos_);
    pos_ = lf + 1;
    if (discarding_) {
      discarding_ = false;
      current_.clear();
      compact();
      continue;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line_) {
      out = current_ + std::string(line.substr(0, 256));
      current_.clear();
      compact();
      return Status::too_long;
    }
    current_.append(line);
    uint64_t size = 0;
    bool non_sync = false;
    if (literal_at_end(line, size, non_sync)) {
      // One literal, or all of a command's together (a MULTIAPPEND's
      // messages, a SEARCH's strings), within max_literal and a line.
      if (size > max_literal_ || current_.size() + size > max_literal_ + max_line_) {
        out = std::move(current_);
        current_.clear();
        if (non_sync) skip_left_ = size;
        compact();
        return Status::too_large;
      }
      current_ += "\r\n";
      literal_left_ = size;
      compact();
      if (!non_sync) return Status::continuation;
      continue;
    }
    out = std::move(current_);
    current_.clear();
    compact();
    return Status::command;
  }
}

}  // namespace hikyaku::imap::protocol
