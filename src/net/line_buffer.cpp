#include "net/line_buffer.hpp"

namespace hikyaku::net {

LineBuffer::Status LineBuffer::next(std::string& line, bool& bare_lf) {
  for (;;) {
    size_t lf = data_.find('\n');
    if (discarding_) {
      if (lf == std::string::npos) {
        data_.clear();
        return Status::need_more;
      }
      data_.erase(0, lf + 1);
      discarding_ = false;
      continue;
    }
    if (lf == std::string::npos) {
      if (data_.size() > max_line_) {
        data_.clear();
        discarding_ = true;
        return Status::too_long;
      }
      return Status::need_more;
    }
    size_t end = lf;
    bare_lf = !(end > 0 && data_[end - 1] == '\r');
    if (!bare_lf) --end;
    if (end > max_line_) {
      data_.erase(0, lf + 1);
      return Status::too_long;
    }
    line.assign(data_, 0, end);
    data_.erase(0, lf + 1);
    return Status::line;
  }
}

std::string LineBuffer::take() {
  std::string out;
  out.swap(data_);
  discarding_ = false;
  return out;
}

}  // namespace hikyaku::net
