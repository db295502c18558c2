#include "scan/protocol/clamd.hpp"

#include "base/strings.hpp"

namespace hikyaku::scan::clamd {

std::string chunk_header(uint32_t size) {
  std::string out(4, '\0');
  out[0] = static_cast<char>((size >> 24) & 0xFF);
  out[1] = static_cast<char>((size >> 16) & 0xFF);
  out[2] = static_cast<char>((size >> 8) & 0xFF);
  out[3] = static_cast<char>(size & 0xFF);
  return out;
}

Reply parse_reply(std::string_view line) {
  while (!line.empty() && (line.back() == '\0' || line.back() == '\n' || line.back() == '\r' || line.back() == ' '))
    line.remove_suffix(1);
  Reply r;
  // "stream: ..." (clamd may number replies "1: stream: ..." with IDSESSION;
  // we never use it, but the prefix is harmless to skip).
  constexpr std::string_view kStream = "stream: ";
  const auto at = line.find(kStream);
  if (line.ends_with(" ERROR") || at == std::string_view::npos) {
    r.detail = base::log_printable(std::string(line.substr(0, 200)));
    if (r.detail.empty()) r.detail = "empty reply";
    return r;
  }
  const std::string_view rest = line.substr(at + kStream.size());
  if (rest == "OK") {
    r.kind = Reply::Kind::clean;
  } else if (rest.ends_with(" FOUND") && rest.size() > 6) {
    r.kind = Reply::Kind::found;
    r.detail = base::log_printable(std::string(rest.substr(0, std::min<size_t>(rest.size() - 6, 200))));
  } else {
    r.detail = base::log_printable(std::string(line.substr(0, 200)));
  }
  return r;
}

}  // namespace hikyaku::scan::clamd
