#include "auth/dmarc/from_rewrite.hpp"

#include "auth/common/message.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::dmarc {
namespace {

// Unfold and trim a header value for reuse in another field.
std::string unfolded(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  return std::string(base::trim(out));
}

}  // namespace

std::string rewrite_from(std::string_view message, const common::Author& author, std::string_view domain) {
  auto parsed = common::parse_message(message);
  std::string original;
  bool has_reply_to = !parsed.all("Reply-To").empty();
  for (const auto* h : parsed.all("From")) original = unfolded(h->value);

  // The display name: the author's name, or the author's address.
  // Control characters (a CR above all) never reach the new field.
  std::string name;
  for (unsigned char c : author.display_name.empty() ? author.address : author.display_name) {
    name += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
  }
  // RFC 2047 §5(3): encoded-words may not sit inside a quoted string, so a
  // name made of encoded-words (and atoms) stays as it is; their characters
  // are never RFC 5322 specials. Anything else is quoted, UTF-8 included
  // (RFC 6532 §3.2): unquoted, a "," or "@" in a name would change the
  // field's meaning (a second address).
  static constexpr std::string_view kSpecials = "()<>[]:;@\\,.\"";
  const bool encoded = name.find("=?") != std::string::npos;
  const bool plain_words = name.find_first_of(kSpecials) == std::string::npos;
  std::string phrase;
  if (encoded && plain_words) {
    phrase = name + " \"via " + std::string(domain) + "\"";
  } else {
    phrase = "\"";
    for (char c : name + " via " + std::string(domain)) {
      if (c == '"' || c == '\\') phrase += '\\';
      phrase += c;
    }
    phrase += "\"";
  }
  std::string new_fields = "From: " + phrase + " <noreply@" + std::string(domain) + ">\r\n";
  if (!has_reply_to) new_fields += "Reply-To: " + original + "\r\n";
  new_fields += "X-Original-From: " + original + "\r\n";

  std::string out;
  out.reserve(message.size() + new_fields.size());
  size_t pos = 0;
  bool placed = false;
  for (const auto& h : parsed.headers) {
    if (!base::iequals(common::field_name(h), "From")) continue;
    const size_t start = static_cast<size_t>(h.raw.data() - message.data());
    size_t end = start + h.raw.size();
    if (message.substr(end, 2) == "\r\n") end += 2;
    out.append(message.substr(pos, start - pos));
    if (!placed) out += new_fields;  // where the From was
    placed = true;
    pos = end;
  }
  out.append(message.substr(pos));
  return out;
}

}  // namespace hikyaku::auth::dmarc
