#include "pop3/protocol/message.hpp"

namespace hikyaku::pop3::protocol {
namespace {

// Calls f(line) for each line without its ending; a final line without LF
// counts as a line, an empty remainder after the last LF does not.
template <class F>
void for_each_line(std::string_view content, F&& f) {
  size_t pos = 0;
  while (pos < content.size()) {
    auto lf = content.find('\n', pos);
    std::string_view line;
    if (lf == std::string_view::npos) {
      line = content.substr(pos);
      pos = content.size();
    } else {
      line = content.substr(pos, lf - pos);
      pos = lf + 1;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!f(line)) return;
  }
}

}  // namespace

uint64_t wire_size(std::string_view content) {
  uint64_t total = 0;
  for_each_line(content, [&](std::string_view line) {
    total += line.size() + 2;
    return true;
  });
  return total;
}

std::string render_message(std::string_view content, std::optional<uint64_t> top_lines) {
  std::string out;
  out.reserve(content.size() + content.size() / 32 + 8);
  bool in_header = true;
  uint64_t body_lines = 0;
  for_each_line(content, [&](std::string_view line) {
    if (!in_header && top_lines) {
      if (body_lines >= *top_lines) return false;  // RFC 1939 §7: n body lines
      ++body_lines;
    }
    // RFC 1939 §3: a line beginning with '.' gets one more '.'.
    if (!line.empty() && line.front() == '.') out += '.';
    out.append(line);
    out += "\r\n";
    if (in_header && line.empty()) in_header = false;  // RFC 5322 §2.1
    return true;
  });
  out += ".\r\n";
  return out;
}

}  // namespace hikyaku::pop3::protocol
