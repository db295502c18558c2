#include "mail/target.hpp"

#include <algorithm>

#include "base/strings.hpp"
#include "mail/address.hpp"

namespace hikyaku::mail {

bool valid_mailbox_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return base::ascii_alnum(c) || c == '.' || c == '_' || c == '-'; });
}

base::Result<Target> Target::parse(std::string_view text) {
  if (base::istarts_with(text, "mailbox:")) {
    const std::string_view name = text.substr(8);
    if (!valid_mailbox_name(name)) return base::make_error("'" + base::log_printable(name) + "' is not a mailbox name");
    return Target{Kind::mailbox, std::string(name)};
  }
  if (base::istarts_with(text, "forward:")) {
    std::string to = base::to_lower(text.substr(8));
    if (to.empty() || !parse_mailbox(to, true))
      return base::make_error("'" + base::log_printable(to) + "' is not an email address");
    return Target{Kind::forward, std::move(to)};
  }
  return base::make_error("'" + base::log_printable(text) + "' must be \"mailbox:NAME\" or \"forward:ADDRESS\"");
}

}  // namespace hikyaku::mail
