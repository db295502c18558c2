#include "mailbox/uidlist.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "base/strings.hpp"

namespace hikyaku::mailbox {
namespace {

// A token as a plain decimal number (base::parse_uint) that fits T.
template <class T>
bool number_in(std::string_view token, T& out) {
  auto n = base::parse_uint(token);
  if (!n || *n > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
  out = static_cast<T>(*n);
  return true;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// White-space separated tokens of a text, one at a time.
class Tokens {
 public:
  explicit Tokens(std::string_view text) : rest_(text) {}
  // The next token; empty at the end.
  std::string_view next() {
    size_t b = 0;
    while (b < rest_.size() && is_space(rest_[b])) ++b;
    size_t e = b;
    while (e < rest_.size() && !is_space(rest_[e])) ++e;
    std::string_view token = rest_.substr(b, e - b);
    rest_.remove_prefix(e);
    return token;
  }
  // The next token as a plain decimal number that fits T.
  template <class T>
  bool number(T& out) {
    return number_in(next(), out);
  }

 private:
  std::string_view rest_;
};

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;  // 24 bytes hold any uint64_t
  out.append(buf, p);
}

}  // namespace

std::optional<UidList> UidList::parse(std::string_view text) {
  const size_t eol = text.find('\n');
  if (eol == std::string_view::npos) return std::nullopt;
  Tokens head(text.substr(0, eol));
  UidList out;
  unsigned version = 0;
  if (head.next() != "hikyaku-uidlist" || !head.number(version) || (version != 1 && version != 2) ||
      !head.number(out.validity) || !head.number(out.next) || out.validity == 0 || out.next == 0)
    return std::nullopt;
  if (version == 1) {
    // An optional FIRST-RECENT: missing or out of range means none claimable.
    if (!head.number(out.first_recent) || out.first_recent > out.next) out.first_recent = out.next;
  } else {
    if (!head.number(out.first_recent) || !head.number(out.highest_modseq) || out.highest_modseq == 0 ||
        out.highest_modseq > kMaxModseq)
      return std::nullopt;
    out.first_recent = std::min(out.first_recent, out.next);
  }

  Tokens body(text.substr(eol + 1));
  uint32_t last = 0;
  for (;;) {
    std::string_view uid_token = body.next();
    if (uid_token.empty()) break;  // the end
    Entry e;
    if (!number_in(uid_token, e.uid)) return std::nullopt;
    if (e.uid <= last || e.uid >= out.next) return std::nullopt;  // must ascend and stay below next
    std::string_view name = body.next();
    if (name.empty()) return std::nullopt;
    e.name = std::string(name);
    if (version == 2) {
      if (!body.number(e.modseq) || e.modseq == 0 || e.modseq > out.highest_modseq) return std::nullopt;
      std::string_view info = body.next();
      if (!info.starts_with("2,")) return std::nullopt;
      e.letters = std::string(info.substr(2));
    }
    last = e.uid;
    out.entries.push_back(std::move(e));
  }
  return out;
}

std::string UidList::format() const {
  std::string out;
  size_t size = 64;
  for (const auto& e : entries) size += e.name.size() + (e.letters ? e.letters->size() : 0) + 36;
  out.reserve(size);
  out += "hikyaku-uidlist 2 ";
  append_number(out, validity);
  out += ' ';
  append_number(out, next);
  out += ' ';
  append_number(out, first_recent);
  out += ' ';
  append_number(out, highest_modseq);
  out += '\n';
  for (const auto& e : entries) {
    append_number(out, e.uid);
    out += ' ';
    out += e.name;
    out += ' ';
    append_number(out, e.modseq);
    out += " 2,";
    if (e.letters) out += *e.letters;
    out += '\n';
  }
  return out;
}

}  // namespace hikyaku::mailbox
