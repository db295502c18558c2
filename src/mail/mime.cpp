#include "mail/mime.hpp"

#include <algorithm>
#include <utility>

#include "base/strings.hpp"
#include "mail/header.hpp"
#include "mail/transfer_encoding.hpp"

namespace hikyaku::mail::mime {
namespace {

using base::to_upper;

// Skip a (possibly nested) comment starting at s[i] == '('.
size_t skip_comment(std::string_view s, size_t i) {
  int depth = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      ++i;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && --depth == 0) {
      return i + 1;
    }
  }
  return s.size();
}

// What parsing may still read: parts left, and whether a bound or a broken
// multipart left something out.
struct Budget {
  size_t parts = kMaxParts;
  bool complete = true;
};

Part parse_entity(std::string_view header, std::string_view body, const ContentType& fallback, int depth,
                  Budget& budget);

// Split a multipart body at its boundary (RFC 2046 §5.1.1). The CRLF before
// a delimiter line belongs to the delimiter; the preamble and the epilogue
// are not parts.
void parse_multipart(Part& part, int depth, Budget& budget) {
  auto boundary = param(part.type, "BOUNDARY");
  if (!boundary || boundary->empty() || depth >= kMaxDepth) {
    part.type = ContentType{};  // unusable: read as text
    budget.complete = false;
    return;
  }
  const std::string delimiter = "--" + *boundary;
  ContentType child_default;
  if (part.type.subtype == "DIGEST") {  // RFC 2046 §5.1.5
    child_default.type = "MESSAGE";
    child_default.subtype = "RFC822";
  }
  const std::string_view b = part.body;
  // Find delimiter lines: at the start of the body or after a LF.
  std::vector<std::pair<size_t, size_t>> marks;  // (start of CRLF before delimiter, end of delimiter line)
  bool closed = false;
  size_t pos = 0;
  while (pos <= b.size() && !closed) {
    const size_t at = b.find(delimiter, pos);
    if (at == std::string_view::npos) break;
    if (at != 0 && b[at - 1] != '\n') {
      pos = at + 1;
      continue;
    }
    const size_t after = at + delimiter.size();
    const bool close = b.substr(after, 2) == "--";
    const size_t rest = close ? after + 2 : after;
    // Only transport padding may follow on the delimiter line.
    const size_t eol = b.find('\n', rest);
    const std::string_view tail = b.substr(rest, (eol == std::string_view::npos ? b.size() : eol) - rest);
    if (!base::trim_lines(tail).empty()) {
      pos = at + 1;
      continue;
    }
    size_t start = at;
    if (start > 0 && b[start - 1] == '\n') --start;
    if (start > 0 && b[start - 1] == '\r') --start;
    marks.emplace_back(start, eol == std::string_view::npos ? b.size() : eol + 1);
    closed = close;
    pos = eol == std::string_view::npos ? b.size() + 1 : eol + 1;
  }
  if (marks.empty()) budget.complete = false;  // the whole body is one unread preamble
  for (size_t i = 0; i < marks.size(); ++i) {
    if (i + 1 == marks.size() && closed) break;
    const size_t begin = marks[i].second;
    size_t end = i + 1 < marks.size() ? marks[i + 1].first : b.size();
    if (end < begin) end = begin;
    if (budget.parts == 0) {
      budget.complete = false;
      break;
    }
    --budget.parts;
    const HeaderBody hb = split_entity(b.substr(begin, end - begin));
    part.children.push_back(parse_entity(hb.header, hb.body, child_default, depth + 1, budget));
  }
  if (part.children.empty()) {
    // RFC 3501 body-type-mpart needs at least one part: an empty text part.
    part.children.push_back(Part{});
  }
}

Part parse_entity(std::string_view header, std::string_view body, const ContentType& fallback, int depth,
                  Budget& budget) {
  Part p;
  p.header = header;
  p.body = body;
  auto ct = header_value(header, "Content-Type");
  p.type = ct ? parse_content_type(*ct, fallback) : fallback;
  if (p.multipart()) {
    parse_multipart(p, depth, budget);
  } else if (p.message()) {
    if (depth >= kMaxDepth || budget.parts == 0) {
      budget.complete = false;
      return p;
    }
    --budget.parts;
    const HeaderBody hb = split_entity(body);
    p.children.push_back(parse_entity(hb.header, hb.body, ContentType{}, depth + 1, budget));
  }
  return p;
}

// A file name from Content-Disposition (RFC 2183 §2.3) or Content-Type's
// "name", also in RFC 2231 form ("filename*", "filename*0*", ...).
std::string filename_of(const Part& part, const ContentType& disposition) {
  auto named = [](const ContentType& ct, std::string_view name) -> std::optional<std::string> {
    for (const auto& p : ct.params) {
      if (p.name == name || (p.name.size() > name.size() && p.name.starts_with(name) && p.name[name.size()] == '*'))
        return p.value.empty() ? std::string("?") : p.value;
    }
    return std::nullopt;
  };
  if (auto f = named(disposition, "FILENAME")) return *f;
  if (auto n = named(part.type, "NAME")) return *n;
  return "";
}

// The signatures of the image formats rspamd recognises (src/libmime/
// images.c: PNG, JPEG, GIF, BMP).
bool starts_as_image(std::string_view octets) {
  static constexpr std::string_view kPng{"\x89PNG\r\n\x1a\n", 8};
  static constexpr std::string_view kJpeg{"\xff\xd8\xff", 3};
  return octets.starts_with(kPng) || octets.starts_with(kJpeg) || octets.starts_with("GIF87a") ||
         octets.starts_with("GIF89a") || octets.starts_with("BM");
}

void collect(const Part& part, Attachments& out) {
  if (part.multipart() || part.message()) {
    for (const auto& child : part.children) collect(child, out);
    return;
  }
  // Sanity checks: is it an attachment at all?
  ContentType disposition;
  if (auto cd = header_value(part.header, "Content-Disposition"); cd && !base::trim_lines(*cd).empty()) {
    // "attachment; filename=x" has Content-Type's shape apart from the slash.
    disposition = parse_content_type("x/" + *cd, ContentType{"X", "INLINE", {}});
  } else {
    disposition.subtype = "INLINE";
  }
  std::string filename = filename_of(part, disposition);
  const bool attachment = disposition.subtype == "ATTACHMENT" || !filename.empty() || part.type.type != "TEXT";
  if (!attachment) return;
  // Its transfer encoding.
  Attachment a;
  a.header = part.header;
  a.body = part.body;
  a.filename = std::move(filename);
  const std::string cte = transfer_encoding(part.header);
  if (cte == "base64") {
    a.encoding = Attachment::Encoding::base64;
  } else if (cte == "quoted-printable") {
    a.encoding = Attachment::Encoding::quoted_printable;
  } else if (!is_identity_encoding(cte)) {
    out.whole_message = true;
    out.why = "a part's Content-Transfer-Encoding is '" + base::log_printable(cte.substr(0, 40)) + "'";
    return;
  }
  // Images are left out when their first octets say they are one.
  if (part.type.type == "IMAGE") {
    constexpr size_t kSniff = 256;  // encoded octets: enough for the 8-octet signatures
    Attachment head = a;
    head.body = a.body.substr(0, kSniff);
    std::string storage;
    if (starts_as_image(content(head, storage))) return;
  }
  out.parts.push_back(std::move(a));
}

}  // namespace

// RFC 2045 §5.1: type "/" subtype *(";" parameter), tolerant of junk.
ContentType parse_content_type(std::string_view value, const ContentType& fallback) {
  ContentType ct;
  std::string clean;
  for (size_t i = 0; i < value.size();) {
    if (value[i] == '(') {
      i = skip_comment(value, i);
      continue;
    }
    clean += value[i++];
  }
  std::string_view v = clean;
  size_t semi = v.find(';');
  const std::string_view media = base::trim_lines(v.substr(0, semi));
  const size_t slash = media.find('/');
  if (slash == std::string_view::npos || base::trim_lines(media.substr(0, slash)).empty() ||
      base::trim_lines(media.substr(slash + 1)).empty()) {
    ct = fallback;
    ct.params.clear();
  } else {
    ct.type = to_upper(base::trim_lines(media.substr(0, slash)));
    ct.subtype = to_upper(base::trim_lines(media.substr(slash + 1)));
  }
  while (semi != std::string_view::npos) {
    v.remove_prefix(semi + 1);
    // name = value | name = "quoted"
    const size_t eq = v.find('=');
    if (eq == std::string_view::npos) break;
    Param p;
    p.name = to_upper(base::trim_lines(v.substr(0, eq)));
    v.remove_prefix(eq + 1);
    v = base::trim_lines(v);
    if (!v.empty() && v[0] == '"') {
      size_t i = 1;
      for (; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        p.value += v[i];
      }
      v.remove_prefix(std::min(v.size(), i + 1));
      semi = v.find(';');
    } else {
      semi = v.find(';');
      p.value = std::string(base::trim_lines(v.substr(0, semi)));
    }
    if (!p.name.empty() && ct.params.size() < 64) ct.params.push_back(std::move(p));
  }
  return ct;
}

std::optional<std::string> param(const ContentType& type, std::string_view name) {
  for (const auto& p : type.params) {
    if (p.name == name) return p.value;
  }
  return std::nullopt;
}

HeaderBody split_entity(std::string_view entity) {
  // The header ends at the first empty line; an entity without one is all header.
  if (entity.starts_with("\r\n")) return {entity.substr(0, 2), entity.substr(2)};
  if (entity.starts_with("\n")) return {entity.substr(0, 1), entity.substr(1)};
  size_t pos = 0;
  for (;;) {
    const size_t lf = entity.find('\n', pos);
    if (lf == std::string_view::npos) return {entity, {}};
    const size_t next = lf + 1;
    if (entity.substr(next, 2) == "\r\n") return {entity.substr(0, next + 2), entity.substr(next + 2)};
    if (entity.substr(next, 1) == "\n") return {entity.substr(0, next + 1), entity.substr(next + 1)};
    pos = next;
  }
}

Tree parse(std::string_view header, std::string_view body) {
  Budget budget;
  Tree tree;
  tree.root = parse_entity(header, body, ContentType{}, 0, budget);
  tree.complete = budget.complete;
  return tree;
}

Tree parse(std::string_view message) {
  const HeaderBody hb = split_entity(message);
  return parse(hb.header, hb.body);
}

std::string transfer_encoding(std::string_view header) {
  auto value = header_value(header, "Content-Transfer-Encoding");
  if (!value) return "";
  std::string out;
  for (char c : *value) {
    if (c == '(' || c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (out.empty() && (c == ' ' || c == '\t')) continue;
      break;
    }
    out += base::ascii_lower(c);
  }
  return out;
}

bool is_identity_encoding(std::string_view mechanism) {
  return mechanism.empty() || mechanism == "7bit" || mechanism == "8bit" || mechanism == "binary";
}

Attachments find_attachments(const Tree& tree) {
  Attachments out;
  if (!tree.complete) {
    out.whole_message = true;
    out.why = "its MIME structure is beyond the bounds or unreadable";
    return out;
  }
  collect(tree.root, out);
  if (out.whole_message) out.parts.clear();
  return out;
}

std::string_view content(const Attachment& attachment, std::string& storage) {
  switch (attachment.encoding) {
    case Attachment::Encoding::identity: return attachment.body;
    case Attachment::Encoding::base64: storage = decode_base64_body(attachment.body); return storage;
    case Attachment::Encoding::quoted_printable:
      storage = decode_quoted_printable_body(attachment.body);
      return storage;
  }
  return attachment.body;
}

}  // namespace hikyaku::mail::mime
