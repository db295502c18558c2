#include "mail/message.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <span>

namespace hikyaku::mail {

base::Result<bool> MessageCursor::next(std::string_view& piece, size_t max) {
  const std::string& text = message_.text;
  if (pos_ < text.size()) {
    const size_t n = std::min<uint64_t>(max, text.size() - pos_);
    piece = std::string_view(text).substr(pos_, n);
    pos_ += n;
    return true;
  }
  if (!message_.body) return false;
  const FileRange& body = *message_.body;
  const uint64_t at = pos_ - text.size();
  if (at >= body.size) return false;
  const size_t n = std::min<uint64_t>(max, body.size - at);
  buffer_.resize(n);
  if (auto st = base::read_exactly(body.file->get(), body.offset + at, std::span(buffer_.data(), n), body.path);
      !st)
    return st.error();
  piece = buffer_;
  pos_ += n;
  return true;
}

base::Result<Message> read_message(const FileRange& range) {
  Message m;
  if (range.size <= kSpillThreshold) {
    m.text.resize(range.size);
    if (auto st = base::read_exactly(range.file->get(), range.offset, std::span(m.text.data(), m.text.size()),
                                     range.path);
        !st)
      return st.error();
    return m;
  }
  const size_t window = std::min<uint64_t>(range.size, kMaxHeaderSection + kAddedFieldsRoom + 2);
  std::string head(window, '\0');
  if (auto st = base::read_exactly(range.file->get(), range.offset, std::span(head.data(), head.size()), range.path);
      !st)
    return st.error();
  // RFC 5322 §2.1: the header section ends at the first empty line.
  size_t split = 0;
  if (head.starts_with("\r\n")) {
    split = 2;
  } else if (auto blank = head.find("\r\n\r\n"); blank != std::string::npos) {
    split = blank + 4;
  } else if (auto last = head.rfind('\n'); last != std::string::npos) {
    split = last + 1;
  } else {
    split = head.size();
  }
  head.resize(split);
  m.text = std::move(head);
  m.body = FileRange{range.file, range.path, range.offset + split, range.size - split};
  return m;
}

base::Result<Message> read_message(const std::filesystem::path& path, uint64_t offset, uint64_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::errno_error("open", path, errno);
  return read_message(FileRange{std::make_shared<const base::UniqueFd>(fd), path, offset, size});
}

}  // namespace hikyaku::mail
