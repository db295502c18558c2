#include "imap/protocol/message.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "base/strings.hpp"
#include "imap/protocol/response.hpp"
#include "mail/mime.hpp"
#include "mail/transfer_encoding.hpp"

namespace hikyaku::imap::protocol {
namespace {

using base::iequals;
using base::to_upper;

// The MIME walker is mail's (one for IMAP and for the scanners).
using mail::mime::ContentType;
using mail::mime::is_identity_encoding;
using mail::mime::param;
using mail::mime::parse_content_type;
using mail::mime::Part;
using mail::mime::transfer_encoding;

Part parse_message(std::string_view message) { return mail::mime::parse(message).root; }

// Calls f(name, raw_field_including_crlf) for each header field.
template <class F>
void for_each_field(std::string_view header, F&& f) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t start = pos;
    // A field runs until a line that does not start with SP/HT.
    size_t end = start;
    for (;;) {
      size_t lf = header.find('\n', end);
      end = lf == std::string_view::npos ? header.size() : lf + 1;
      if (end >= header.size() || (header[end] != ' ' && header[end] != '\t')) break;
    }
    std::string_view field = header.substr(start, end - start);
    pos = end;
    if (base::trim_lines(field).empty()) continue;  // the empty line
    size_t colon = field.find(':');
    std::string_view name = colon == std::string_view::npos ? std::string_view() : base::trim_lines(field.substr(0, colon));
    f(name, field);
  }
}

std::string unfold(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  return std::string(base::trim_lines(out));
}

// Skip a (possibly nested) comment starting at s[i] == '('.
size_t skip_comment(std::string_view s, size_t i, std::string* text = nullptr) {
  int depth = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      if (text) *text += s[i + 1];
      ++i;
      continue;
    }
    if (c == '(') {
      if (depth++ > 0 && text) *text += c;
      continue;
    }
    if (c == ')') {
      if (--depth == 0) return i + 1;
      if (text) *text += c;
      continue;
    }
    if (text) *text += c;
  }
  return s.size();
}

uint64_t count_lines(std::string_view s) {
  uint64_t n = static_cast<uint64_t>(std::count(s.begin(), s.end(), '\n'));
  if (!s.empty() && s.back() != '\n') ++n;
  return n;
}

// ---------------------------------------------------------------- addresses

struct Token {
  enum class Kind { word, quoted, special, comment };
  Kind kind;
  std::string text;
};

std::vector<Token> tokenize_addresses(std::string_view s) {
  std::vector<Token> out;
  for (size_t i = 0; i < s.size() && out.size() < 10000;) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      ++i;
    } else if (c == '(') {
      Token t{Token::Kind::comment, ""};
      i = skip_comment(s, i, &t.text);
      out.push_back(std::move(t));
    } else if (c == '"') {
      Token t{Token::Kind::quoted, ""};
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        if (s[i] != '\r' && s[i] != '\n') t.text += s[i];
        ++i;
      }
      ++i;
      out.push_back(std::move(t));
    } else if (c == '<' || c == '>' || c == '@' || c == ':' || c == ';' || c == ',') {
      out.push_back({Token::Kind::special, std::string(1, c)});
      ++i;
    } else {
      Token t{Token::Kind::word, ""};
      while (i < s.size() && std::string_view(" \t\r\n()\"<>@:;,").find(s[i]) == std::string_view::npos) t.text += s[i++];
      out.push_back(std::move(t));
    }
  }
  return out;
}

// One address of an address list; group syntax is marked by `group_start`
// (mailbox = the group name) and `group_end` entries.
struct Addr {
  std::optional<std::string> name;
  std::optional<std::string> adl;  // obsolete source route "@a,@b"
  std::optional<std::string> mailbox;
  std::optional<std::string> host;
  bool group_start = false;
  bool group_end = false;
  bool no_domain = false;  // an addr-spec without "@": host is MISSING_DOMAIN for ENVELOPE
};

// One mailbox from its tokens: [phrase] "<" addr-spec ">" or addr-spec [comment].
Addr mailbox_address(const std::vector<Token>& toks) {
  std::string phrase, spec, comment;
  auto lt = std::find_if(toks.begin(), toks.end(),
                         [](const Token& t) { return t.kind == Token::Kind::special && t.text == "<"; });
  auto join = [](std::string& out, const Token& t, bool spaced) {
    if (spaced && !out.empty()) out += ' ';
    out += t.text;
  };
  if (lt != toks.end()) {
    for (auto it = toks.begin(); it != lt; ++it) {
      if (it->kind == Token::Kind::word || it->kind == Token::Kind::quoted) join(phrase, *it, true);
    }
    for (auto it = lt + 1; it != toks.end() && !(it->kind == Token::Kind::special && it->text == ">"); ++it) {
      if (it->kind != Token::Kind::comment) join(spec, *it, false);
    }
  } else {
    for (const auto& t : toks) {
      if (t.kind == Token::Kind::comment) comment = t.text;
      else join(spec, t, false);
    }
    phrase = comment;
  }
  // RFC 5322 §4.4 obs-route "@a,@b:" before the addr-spec: the ENVELOPE adl.
  Addr a;
  if (size_t colon = spec.rfind(':'); colon != std::string::npos) {
    if (colon > 0) a.adl = spec.substr(0, colon);
    spec.erase(0, colon + 1);
  }
  if (!phrase.empty()) a.name = phrase;
  size_t at = spec.rfind('@');
  if (at == std::string::npos) {
    a.mailbox = spec;
    a.host = std::string("MISSING_DOMAIN");
    a.no_domain = true;
  } else {
    a.mailbox = spec.substr(0, at);
    a.host = spec.substr(at + 1);
  }
  return a;
}

// RFC 5322 §3.4 address-list, tolerant of junk.
std::vector<Addr> parse_addresses(std::string_view value) {
  auto toks = tokenize_addresses(value);
  std::vector<Addr> out;
  std::vector<Token> current;
  bool in_group = false;
  auto flush = [&] {
    bool any = std::any_of(current.begin(), current.end(), [](const Token& t) {
      return t.kind == Token::Kind::word || t.kind == Token::Kind::quoted || t.kind == Token::Kind::special;
    });
    if (any && out.size() < 1000) out.push_back(mailbox_address(current));
    current.clear();
  };
  bool in_angle = false;
  for (auto& t : toks) {
    if (t.kind == Token::Kind::special) {
      if (t.text == "<") in_angle = true;
      if (t.text == ">") in_angle = false;
      if (!in_angle && t.text == ",") {
        flush();
        continue;
      }
      if (!in_angle && t.text == ":" && !in_group) {
        std::string phrase;
        for (const auto& p : current) {
          if (p.kind == Token::Kind::word || p.kind == Token::Kind::quoted) {
            if (!phrase.empty()) phrase += ' ';
            phrase += p.text;
          }
        }
        current.clear();
        Addr g;
        g.mailbox = phrase;
        g.group_start = true;
        out.push_back(g);
        in_group = true;
        continue;
      }
      if (!in_angle && t.text == ";" && in_group) {
        flush();
        Addr e;
        e.group_end = true;
        out.push_back(e);
        in_group = false;
        continue;
      }
    }
    current.push_back(std::move(t));
  }
  flush();
  if (in_group) {
    Addr e;
    e.group_end = true;
    out.push_back(e);
  }
  return out;
}

// RFC 3501 §7.4.2: a parenthesised list of addresses, group syntax marked by
// (NIL NIL "group" NIL) ... (NIL NIL NIL NIL); NIL for no address.
std::string address_list(const std::optional<std::string>& value) {
  if (!value) return "NIL";
  std::string out;
  for (const auto& a : parse_addresses(*value)) {
    if (a.group_end) {
      out += "(NIL NIL NIL NIL)";
    } else {
      out += "(" + nstring(a.name) + " " + nstring(a.adl) + " " + nstring(a.mailbox) + " " + nstring(a.host) + ")";
    }
  }
  if (out.empty()) return "NIL";
  return "(" + out + ")";
}

// An empty field counts as absent (RFC 3501 §7.4.2 defaults).
std::optional<std::string> non_empty(std::optional<std::string> v) {
  if (v && base::trim_lines(*v).empty()) return std::nullopt;
  return v;
}

std::string envelope_of(std::string_view header) {
  auto field = [&](const char* name) { return header_value(header, name); };
  auto from = non_empty(header_values(header, "From"));
  auto sender = non_empty(header_values(header, "Sender"));
  auto reply_to = non_empty(header_values(header, "Reply-To"));
  std::string out = "(";
  out += nstring(field("Date")) + " ";
  out += nstring(field("Subject")) + " ";
  out += address_list(from) + " ";
  // RFC 3501 §7.4.2: absent Sender/Reply-To default to From.
  out += address_list(sender ? sender : from) + " ";
  out += address_list(reply_to ? reply_to : from) + " ";
  out += address_list(header_values(header, "To")) + " ";
  out += address_list(header_values(header, "Cc")) + " ";
  out += address_list(header_values(header, "Bcc")) + " ";
  out += nstring(field("In-Reply-To")) + " ";
  out += nstring(field("Message-ID"));
  return out + ")";
}

std::string params_list(const ContentType& ct) {
  if (ct.params.empty()) return "NIL";
  std::string out = "(";
  for (const auto& p : ct.params) {
    if (out.size() > 1) out += ' ';
    out += quote(p.name) + " " + quote(p.value);
  }
  return out + ")";
}

std::string disposition(std::string_view header) {
  auto v = header_value(header, "Content-Disposition");
  if (!v || base::trim_lines(*v).empty()) return "NIL";
  // Reuse the Content-Type parser: "attachment; filename=x" has the same shape
  // apart from the slash.
  ContentType ct = parse_content_type("x/" + *v, ContentType{});
  return "(" + quote(ct.subtype) + " " + params_list(ct) + ")";
}

std::string structure(const Part& p, bool extended) {
  if (p.multipart()) {
    std::string out = "(";
    for (const auto& c : p.children) out += structure(c, extended);
    out += " " + quote(p.type.subtype);
    if (extended) {
      out += " " + params_list(p.type) + " " + disposition(p.header) + " " +
             nstring(header_value(p.header, "Content-Language")) + " " +
             nstring(header_value(p.header, "Content-Location"));
    }
    return out + ")";
  }
  ContentType ct = p.type;
  if (ct.type == "TEXT" && !param(ct, "CHARSET")) ct.params.insert(ct.params.begin(), {"CHARSET", "US-ASCII"});
  std::string encoding = "7BIT";
  if (auto e = header_value(p.header, "Content-Transfer-Encoding"); e && !base::trim_lines(*e).empty())
    encoding = to_upper(base::trim_lines(*e));
  std::string out = "(" + quote(ct.type) + " " + quote(ct.subtype) + " " + params_list(ct) + " " +
                    nstring(header_value(p.header, "Content-ID")) + " " +
                    nstring(header_value(p.header, "Content-Description")) + " " + quote(encoding) + " " +
                    std::to_string(p.body.size());
  if (p.message() && !p.children.empty()) {
    const Part& m = p.children[0];
    out += " " + envelope_of(m.header) + " " + structure(m, extended) + " " + std::to_string(count_lines(p.body));
  } else if (p.message()) {
    // Past the parser's depth or part budget (mail/mime.hpp): the grammar
    // still wants an envelope, a body and a line count (RFC 3501 §9
    // body-type-msg). The inner header gives the envelope; its body is
    // described as opaque, not parsed.
    const mail::mime::HeaderBody inner = mail::mime::split_entity(p.body);
    out += " " + envelope_of(inner.header) + " (\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" " +
           std::to_string(inner.body.size()) + ") " + std::to_string(count_lines(p.body));
  } else if (ct.type == "TEXT") {
    out += " " + std::to_string(count_lines(p.body));
  }
  if (extended) {
    out += " " + nstring(header_value(p.header, "Content-MD5")) + " " + disposition(p.header) + " " +
           nstring(header_value(p.header, "Content-Language")) + " " +
           nstring(header_value(p.header, "Content-Location"));
  }
  return out + ")";
}


// ---------------------------------------------------------------- SORT values

bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = base::ascii_upper(c);
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 2047 §2 encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
// at v[i]: its text decoded to UTF-8 in `out` and the position after it in
// `end`; false when what is there is not one that decodes.
bool encoded_word_at(std::string_view v, size_t i, std::string& out, size_t& end) {
  constexpr size_t kMaxWord = 1000;  // RFC 2047 §2 says 75; be lenient, but bounded
  if (v.substr(i, 2) != "=?") return false;
  size_t q1 = v.find('?', i + 2);
  if (q1 == std::string_view::npos || q1 + 2 >= v.size() || v[q1 + 2] != '?') return false;
  std::string_view charset = v.substr(i + 2, q1 - i - 2);
  if (size_t star = charset.find('*'); star != std::string_view::npos) charset = charset.substr(0, star);  // RFC 2231 §5
  const char encoding = base::ascii_upper(v[q1 + 1]);
  size_t text_start = q1 + 3;
  // Looked for within kMaxWord only: a value full of "=?" without "?="
  // must not cost a scan to its end at each of them.
  size_t close = v.substr(0, i + kMaxWord + 2).find("?=", text_start);
  if (charset.empty() || close == std::string_view::npos || close - i > kMaxWord) return false;
  std::string_view text = v.substr(text_start, close - text_start);
  if (std::any_of(text.begin(), text.end(), is_wsp)) return false;
  std::string octets;
  if (encoding == 'B') {
    auto decoded = base::base64_decode(text);
    if (!decoded) return false;
    octets = std::move(*decoded);
  } else if (encoding == 'Q') {
    // RFC 2047 §4.2: "_" is a space, "=XX" an octet.
    for (size_t k = 0; k < text.size(); ++k) {
      if (text[k] == '_') {
        octets += ' ';
      } else if (text[k] == '=' && k + 2 < text.size() && hex_value(text[k + 1]) >= 0 && hex_value(text[k + 2]) >= 0) {
        octets += static_cast<char>(hex_value(text[k + 1]) * 16 + hex_value(text[k + 2]));
        k += 2;
      } else {
        octets += text[k];
      }
    }
  } else {
    return false;
  }
  // No charset tables here: UTF-8 and US-ASCII as they are, ISO-8859-1
  // octet by octet; any other charset's octets as they are when they are
  // UTF-8, else as ISO-8859-1 (readable for the Latin ones).
  const bool utf8 = base::iequals(charset, "UTF-8") || base::iequals(charset, "US-ASCII");
  out.clear();
  if ((utf8 || !base::istarts_with(charset, "ISO-8859-1")) && base::valid_utf8(octets)) {
    out = std::move(octets);
  } else {
    for (char c : octets) base::append_utf8(out, static_cast<unsigned char>(c));
  }
  end = close + 2;
  return true;
}

// RFC 5256 §5: subj-blob = "[" *BLOBCHAR "]" *WSP; BLOBCHAR = %x01-5a /
// %x5c / %x5e-7f (not "[" or "]"). The length of the blob at s[i], or 0.
size_t blob_at(std::string_view s, size_t i) {
  if (i >= s.size() || s[i] != '[') return 0;
  size_t k = i + 1;
  while (k < s.size()) {
    auto u = static_cast<unsigned char>(s[k]);
    if (u == 0 || u >= 0x80 || s[k] == '[' || s[k] == ']') break;
    ++k;
  }
  if (k >= s.size() || s[k] != ']') return 0;
  ++k;
  while (k < s.size() && s[k] == ' ') ++k;  // WSP: tabs are spaces after step (1)
  return k - i;
}

// RFC 5256 §5: subj-leader = (*subj-blob subj-refwd) / WSP, with
// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":". The length of
// the leader at the start of `s`, or 0.
size_t leader_length(std::string_view s) {
  if (!s.empty() && s[0] == ' ') return 1;
  size_t i = 0;
  while (size_t blob = blob_at(s, i)) i += blob;
  auto word = [&](std::string_view w) { return base::istarts_with(s.substr(i), w); };
  if (word("fwd")) i += 3;
  else if (word("fw") || word("re")) i += 2;
  else return 0;
  while (i < s.size() && s[i] == ' ') ++i;
  i += blob_at(s, i);
  if (i >= s.size() || s[i] != ':') return 0;
  return i + 1;
}

// The first address of an address header (a group's start is an address
// here, as in ENVELOPE); nullopt when there is none.
std::optional<Addr> first_address(std::string_view value) {
  auto addresses = parse_addresses(value);
  for (auto& a : addresses) {
    if (!a.group_end) return std::move(a);
  }
  return std::nullopt;
}

// The words of an RFC 5322 §3.3 date-time after its optional day-of-week:
// day month year [time [zone]] (views into `value`).
std::vector<std::string_view> date_time_words(std::string_view value) {
  if (auto comma = value.find(','); comma != std::string_view::npos) value.remove_prefix(comma + 1);
  return base::split_words(value);
}

// The day of the first three of those words.
std::optional<Days> date_of_words(const std::vector<std::string_view>& words) {
  if (words.size() < 3) return std::nullopt;
  std::string year(words[2]);
  if (words[2].size() == 2) {  // obsolete two-digit year (RFC 5322 §4.3)
    auto y = base::parse_uint(words[2]);
    if (!y) return std::nullopt;
    year = std::to_string(*y < 50 ? 2000 + *y : 1900 + *y);
  }
  return parse_date_text(std::string(words[0]) + "-" + std::string(words[1].substr(0, 3)) + "-" + year);
}

}  // namespace

HeaderBody split_message(std::string_view message) { return mail::mime::split_entity(message); }

std::string header_fields(std::string_view header, const std::vector<std::string>& names, bool exclude) {
  std::string out;
  for_each_field(header, [&](std::string_view name, std::string_view field) {
    bool listed = std::any_of(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, name); });
    if (listed != exclude && !name.empty()) {
      out += field;
      if (!field.ends_with("\n")) out += "\r\n";
    }
  });
  return out + "\r\n";
}

std::optional<std::string> header_value(std::string_view header, std::string_view name) {
  std::optional<std::string> out;
  for_each_field(header, [&](std::string_view n, std::string_view field) {
    if (!out && iequals(n, name)) out = unfold(field.substr(field.find(':') + 1));
  });
  return out;
}

std::optional<std::string> header_values(std::string_view header, std::string_view name) {
  std::optional<std::string> out;
  for_each_field(header, [&](std::string_view n, std::string_view field) {
    if (!iequals(n, name)) return;
    std::string v = unfold(field.substr(field.find(':') + 1));
    out = out ? *out + ", " + v : v;
  });
  return out;
}

namespace {

// The part that section-part `part` (RFC 3501 §6.4.5, non-empty) names in
// the tree under `root`, or nullptr. A non-multipart message has one part,
// 1 (its body); a message/rfc822 part's numbers go to the parts of the
// message inside it.
const Part* find_part(const Part& root, const std::vector<uint32_t>& part) {
  const Part* cur = &root;
  bool is_root = true;
  for (uint32_t n : part) {
    if (cur->multipart()) {
      if (n > cur->children.size()) return nullptr;
      cur = &cur->children[n - 1];
    } else if (is_root) {
      if (n != 1) return nullptr;
    } else if (cur->message() && !cur->children.empty()) {
      const Part& m = cur->children[0];
      if (m.multipart()) {
        if (n > m.children.size()) return nullptr;
        cur = &m.children[n - 1];
      } else if (n == 1) {
        cur = &m;
      } else {
        return nullptr;
      }
    } else {
      return nullptr;
    }
    is_root = false;
  }
  return cur;
}

// One change to the message text made by encode_binary_parts.
struct Edit {
  size_t offset = 0;
  size_t length = 0;
  std::string replacement;
};

// The edits that re-encode as base64 every leaf part of the tree under
// `part` that holds binary octets: its CTE is "binary", or it holds a NUL
// under an identity encoding. Edits come in ascending offset order.
void binary_part_edits(std::string_view message, const Part& part, std::vector<Edit>& out) {
  if (part.multipart() || part.message()) {
    for (const auto& child : part.children) binary_part_edits(message, child, out);
    return;
  }
  const std::string cte = transfer_encoding(part.header);
  const bool binary = cte == "binary" || (is_identity_encoding(cte) && part.body.find('\0') != std::string_view::npos);
  if (!binary || part.body.empty()) return;
  // The header must end in its empty line, where the new field goes.
  std::string_view header = part.header;
  size_t blank = 0;
  if (header == "\r\n" || header.ends_with("\n\r\n")) blank = 2;
  else if (header == "\n" || header.ends_with("\n\n")) blank = 1;
  if (blank == 0) return;
  const auto offset_of = [&](std::string_view inner) { return static_cast<size_t>(inner.data() - message.data()); };
  for_each_field(header, [&](std::string_view name, std::string_view field) {
    if (iequals(name, "Content-Transfer-Encoding")) out.push_back({offset_of(field), field.size(), ""});
  });
  out.push_back({offset_of(header) + header.size() - blank, 0, "Content-Transfer-Encoding: base64\r\n"});
  out.push_back({offset_of(part.body), part.body.size(), mail::encode_base64_body(part.body)});
}

}  // namespace

std::optional<std::string> section_text(std::string_view message, const Section& section) {
  using T = Section::Text;
  if (section.part.empty()) {
    HeaderBody hb = split_message(message);
    switch (section.text) {
      case T::none: return std::string(message);
      case T::header: return std::string(hb.header);
      case T::text: return std::string(hb.body);
      case T::header_fields: return header_fields(hb.header, section.fields, false);
      case T::header_fields_not: return header_fields(hb.header, section.fields, true);
      case T::mime: return std::nullopt;
    }
    return std::nullopt;
  }
  Part root = parse_message(message);
  const Part* cur = find_part(root, section.part);
  if (!cur) return std::nullopt;
  switch (section.text) {
    case T::none: return std::string(cur->body);
    case T::mime: return std::string(cur->header);
    default: break;
  }
  // HEADER/TEXT after a part number: only for a message/rfc822 part.
  if (!cur->message() || cur->children.empty()) return std::nullopt;
  const Part& m = cur->children[0];
  switch (section.text) {
    case T::header: return std::string(m.header);
    case T::text: return std::string(m.body);
    case T::header_fields: return header_fields(m.header, section.fields, false);
    case T::header_fields_not: return header_fields(m.header, section.fields, true);
    default: return std::nullopt;
  }
}

BinarySection binary_section(std::string_view message, const std::vector<uint32_t>& part) {
  using S = BinarySection::Status;
  // RFC 3516 §4.2 / RFC 9051 §6.4.5: BINARY[] is the whole message, which
  // has no transfer encoding of its own.
  if (part.empty()) return {S::ok, std::string(message)};
  Part root = parse_message(message);
  const Part* cur = find_part(root, part);
  if (!cur) return {S::missing, {}};
  // RFC 2045 §6.4: a multipart or message/rfc822 entity is never encoded
  // (only 7bit, 8bit or binary are allowed): its octets are served as
  // they are, whatever its header says.
  if (cur->multipart() || cur->message()) return {S::ok, std::string(cur->body)};
  const std::string cte = transfer_encoding(cur->header);
  if (is_identity_encoding(cte)) return {S::ok, std::string(cur->body)};
  if (cte == "base64") return {S::ok, mail::decode_base64_body(cur->body)};
  if (cte == "quoted-printable") return {S::ok, mail::decode_quoted_printable_body(cur->body)};
  // RFC 3516 §4.2: the server MUST fail with NO [UNKNOWN-CTE].
  return {S::unknown_cte, {}};
}

std::string encode_binary_parts(std::string_view message) {
  Part root = parse_message(message);
  std::vector<Edit> edits;
  binary_part_edits(message, root, edits);
  if (edits.empty()) return std::string(message);
  std::string out;
  out.reserve(message.size() + message.size() / 2);
  size_t pos = 0;
  for (const auto& e : edits) {
    if (e.offset < pos) continue;  // cannot happen (ascending, disjoint); never copy backwards
    out.append(message.substr(pos, e.offset - pos));
    out += e.replacement;
    pos = e.offset + e.length;
  }
  out.append(message.substr(std::min(pos, message.size())));
  return out;
}

std::string envelope(std::string_view message) { return envelope_of(split_message(message).header); }

std::string body_structure(std::string_view message, bool extended) {
  return structure(parse_message(message), extended);
}


std::optional<Days> parse_rfc5322_date(std::string_view value) {
  // [day-of-week ","] day month year time zone: only the date matters here.
  return date_of_words(date_time_words(value));
}

std::string address_search_text(std::string_view value) {
  std::string out;
  for (const auto& a : parse_addresses(value)) {
    if (a.group_start || a.group_end) continue;
    if (!out.empty()) out += ", ";
    if (a.name) out += *a.name + " ";
    out += "<" + a.mailbox.value_or("") + "@" + a.host.value_or("") + ">";
  }
  return out;
}

std::optional<int64_t> parse_rfc5322_date_time(std::string_view value) {
  // RFC 5322 §3.3: [day-of-week ","] day month year hour ":" minute
  // [":" second] zone, comments after it ignored.
  auto words = date_time_words(value);
  auto day = date_of_words(words);
  if (!day || words.size() < 4) return std::nullopt;
  auto hms = base::split(words[3], ':');
  if (hms.size() < 2 || hms.size() > 3) return std::nullopt;
  int64_t seconds = 0;
  for (size_t k = 0; k < 3; ++k) {
    std::optional<uint64_t> n = k < hms.size() ? base::parse_uint(hms[k]) : std::optional<uint64_t>(0);
    if (!n || *n > (k == 0 ? 23U : k == 1 ? 59U : 60U)) return std::nullopt;
    seconds = seconds * 60 + static_cast<int64_t>(*n);
  }
  // The zone: +hhmm / -hhmm; obs-zone names (RFC 5322 §4.3) for North
  // America; anything else (UT, GMT, military letters, none) is UTC.
  int64_t offset = 0;
  if (words.size() >= 5) {
    std::string_view z = words[4];
    if (z.size() == 5 && (z[0] == '+' || z[0] == '-')) {
      auto hhmm = base::parse_uint(z.substr(1));
      if (!hhmm) return std::nullopt;
      offset = static_cast<int64_t>((*hhmm / 100) * 3600 + (*hhmm % 100) * 60) * (z[0] == '-' ? -1 : 1);
    } else {
      struct Zone {
        const char* name;
        int hours;
      };
      static constexpr std::array<Zone, 8> kZones{{
          {"EST", -5}, {"EDT", -4}, {"CST", -6}, {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7},
      }};
      for (const auto& zone : kZones) {
        if (iequals(z, zone.name)) offset = int64_t{zone.hours} * 3600;
      }
    }
  }
  return *day * 86400 + seconds - offset;
}

std::string decode_encoded_words(std::string_view value) {
  std::string out;
  bool after_encoded = false;  // the last thing copied was an encoded-word
  size_t i = 0;
  while (i < value.size()) {
    size_t j = i;
    while (j < value.size() && is_wsp(value[j])) ++j;
    std::string_view space = value.substr(i, j - i);
    i = j;
    if (i >= value.size()) {
      out += space;
      break;
    }
    std::string decoded;
    size_t end = 0;
    if (encoded_word_at(value, i, decoded, end)) {
      if (!after_encoded || space.empty()) out += space;  // RFC 2047 §6.2: dropped between two
      out += decoded;
      i = end;
      after_encoded = true;
      continue;
    }
    // Plain text up to the next whitespace or the next "=?" (leniently, an
    // encoded-word not separated from the text before it).
    out += space;
    size_t k = i + 1;
    while (k < value.size() && !is_wsp(value[k]) && value.substr(k, 2) != "=?") ++k;
    out += value.substr(i, k - i);
    i = k;
    after_encoded = false;
  }
  return out;
}

BaseSubject base_subject(std::string_view subject) {
  // (1) Encoded-words decoded; tabs and continuations as spaces, runs of
  // spaces as one.
  std::string s;
  bool reply_or_forward = false;
  for (char c : decode_encoded_words(subject)) {
    if (is_wsp(c)) c = ' ';
    if (c == ' ' && !s.empty() && s.back() == ' ') continue;
    s += c;
  }
  for (;;) {
    // (2) subj-trailer = "(fwd)" / WSP, removed at the end while any is there.
    for (;;) {
      if (!s.empty() && s.back() == ' ') {
        s.pop_back();
      } else if (s.size() >= 5 && iequals(std::string_view(s).substr(s.size() - 5), "(fwd)")) {
        s.resize(s.size() - 5);
        reply_or_forward = true;
      } else {
        break;
      }
    }
    // (3) subj-leader removed; (4) a subj-blob removed when something is
    // left after it; (5) both again until neither applies.
    for (;;) {
      if (size_t leader = leader_length(s)) {
        reply_or_forward = reply_or_forward || s[0] != ' ';  // a subj-refwd, not only WSP
        s.erase(0, leader);
        continue;
      }
      size_t blob = blob_at(s, 0);
      if (blob > 0 && blob < s.size()) {
        s.erase(0, blob);
        continue;
      }
      break;
    }
    // (6) "[fwd:" ... "]" around the rest: unwrapped, and again from (2).
    if (s.size() >= 6 && base::istarts_with(s, "[fwd:") && s.back() == ']') {
      s = s.substr(5, s.size() - 6);
      reply_or_forward = true;
      continue;
    }
    return {std::move(s), reply_or_forward};  // (7)
  }
}

std::string first_mailbox(std::string_view value) {
  auto a = first_address(value);
  return a ? a->mailbox.value_or("") : "";
}

std::string first_display_name(std::string_view value) {
  auto a = first_address(value);
  if (!a) return "";
  if (a->name) {
    std::string name = decode_encoded_words(*a->name);
    if (!base::trim_lines(name).empty()) return std::string(base::trim_lines(name));
  }
  std::string spec = a->mailbox.value_or("");
  if (!a->group_start && !a->no_domain && a->host) spec += "@" + *a->host;
  return spec;
}

// Knuth-Morris-Pratt over ASCII-case-folded octets: O(haystack + needle)
// whatever both hold. Both come from the client (SEARCH TEXT with a long
// needle over a long message): std::search's O(haystack × needle) let one
// SEARCH keep a pool thread for seconds.
bool icontains(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  if (needle.size() > haystack.size()) return false;
  std::string folded(needle);
  for (char& c : folded) c = base::ascii_lower(c);
  // border[i]: the length of the longest proper border of folded[0..i].
  std::vector<size_t> border(folded.size(), 0);
  for (size_t i = 1, k = 0; i < folded.size(); ++i) {
    while (k > 0 && folded[i] != folded[k]) k = border[k - 1];
    if (folded[i] == folded[k]) ++k;
    border[i] = k;
  }
  size_t matched = 0;
  for (char raw : haystack) {
    const char c = base::ascii_lower(raw);
    while (matched > 0 && c != folded[matched]) matched = border[matched - 1];
    if (c == folded[matched] && ++matched == folded.size()) return true;
  }
  return false;
}

}  // namespace hikyaku::imap::protocol
