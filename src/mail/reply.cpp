#include "mail/reply.hpp"

#include <string>

namespace hikyaku::mail {

std::string Reply::wire(bool enhanced) const {
  std::string out;
  std::string code_text = std::to_string(code);
  std::vector<std::string> texts = lines.empty() ? std::vector<std::string>{""} : lines;
  for (size_t i = 0; i < texts.size(); ++i) {
    out += code_text;
    out += (i + 1 < texts.size()) ? '-' : ' ';
    if (enhanced && !status.empty()) {
      out += status;
      if (!texts[i].empty()) out += ' ';
    }
    out += texts[i];
    out += "\r\n";
  }
  return out;
}

std::string Reply::summary() const {
  std::string out = std::to_string(code);
  if (!status.empty()) out += " " + status;
  for (const auto& l : lines) out += " " + l;
  return out;
}

}  // namespace hikyaku::mail
