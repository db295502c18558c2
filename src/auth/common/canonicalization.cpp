#include "auth/common/canonicalization.hpp"

#include "base/strings.hpp"

namespace hikyaku::auth::common {
namespace {
bool is_wsp(char c) { return c == ' ' || c == '\t'; }
}  // namespace

std::string_view canonicalization_name(Canonicalization c) {
  return c == Canonicalization::relaxed ? "relaxed" : "simple";
}

std::optional<CanonicalizationPair> parse_canonicalization(std::string_view v) {
  auto one = [](std::string_view s) -> std::optional<Canonicalization> {
    if (s == "simple") return Canonicalization::simple;
    if (s == "relaxed") return Canonicalization::relaxed;
    return std::nullopt;
  };
  CanonicalizationPair p;
  size_t slash = v.find('/');
  auto h = one(v.substr(0, slash));
  if (!h) return std::nullopt;
  p.header = *h;
  if (slash != std::string_view::npos) {
    auto b = one(v.substr(slash + 1));
    if (!b) return std::nullopt;
    p.body = *b;
  }
  return p;
}

std::string canonicalize_header(Canonicalization c, std::string_view raw) {
  if (c == Canonicalization::simple) return std::string(raw) + "\r\n";  // RFC 6376 §3.4.1
  // RFC 6376 §3.4.2: lowercase the name, unfold, compress WSP, trim the value,
  // no WSP around the colon.
  size_t colon = raw.find(':');
  std::string_view name = raw.substr(0, colon);
  while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
  std::string out = base::to_lower(name);
  out += ':';
  if (colon == std::string_view::npos) return out + "\r\n";
  bool wsp = false;
  bool started = false;
  for (char ch : raw.substr(colon + 1)) {
    if (ch == '\r' || ch == '\n') continue;
    if (is_wsp(ch)) {
      wsp = true;
      continue;
    }
    if (wsp && started) out += ' ';
    wsp = false;
    started = true;
    out += ch;
  }
  out += "\r\n";
  return out;
}

std::string remove_b_value(std::string_view raw) {
  size_t colon = raw.find(':');
  if (colon == std::string_view::npos) return std::string(raw);
  size_t i = colon + 1;
  while (i < raw.size()) {
    size_t seg_end = raw.find(';', i);
    if (seg_end == std::string_view::npos) seg_end = raw.size();
    size_t j = i;
    while (j < seg_end && (is_wsp(raw[j]) || raw[j] == '\r' || raw[j] == '\n')) ++j;
    if (j < seg_end && raw[j] == 'b') {
      size_t k = j + 1;
      while (k < seg_end && (is_wsp(raw[k]) || raw[k] == '\r' || raw[k] == '\n')) ++k;
      if (k < seg_end && raw[k] == '=') {
        std::string out(raw.substr(0, k + 1));
        out += raw.substr(seg_end);
        return out;
      }
    }
    i = seg_end + 1;
  }
  return std::string(raw);
}

void BodyCanonicalizer::content(char ch, std::string& out) {
  if (c_ == Canonicalization::relaxed && is_wsp(ch)) {
    pending_wsp_ = true;  // RFC 6376 §3.4.4: WSP runs become one SP, trailing WSP goes
    return;
  }
  if (line_len_ == 0 && empty_lines_ > 0) {
    for (; empty_lines_ > 0; --empty_lines_) out += "\r\n";
  }
  if (pending_wsp_) {
    out += ' ';
    ++line_len_;
    pending_wsp_ = false;
  }
  out += ch;
  ++line_len_;
  emitted_ = true;
}

void BodyCanonicalizer::end_line(std::string& out) {
  pending_wsp_ = false;
  if (line_len_ == 0) {
    ++empty_lines_;  // RFC 6376 §3.4.3: trailing empty lines are dropped
  } else {
    out += "\r\n";
    line_len_ = 0;
  }
}

void BodyCanonicalizer::update(std::string_view chunk, std::string& out) {
  for (char ch : chunk) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (ch == '\n') {
        end_line(out);
        continue;
      }
      content('\r', out);  // a bare CR is content
    }
    if (ch == '\r') {
      pending_cr_ = true;
      continue;
    }
    content(ch, out);
  }
}

void BodyCanonicalizer::finish(std::string& out) {
  if (pending_cr_) {
    pending_cr_ = false;
    content('\r', out);
  }
  // A last line without CRLF gets one (RFC 6376 §3.4.3, §3.4.4).
  if (line_len_ > 0) end_line(out);
  // simple: an empty body is one CRLF; relaxed: an empty body is empty.
  if (!emitted_ && c_ == Canonicalization::simple) out += "\r\n";
  emitted_ = true;
  empty_lines_ = 0;
}

std::string canonicalize_body(Canonicalization c, std::string_view body) {
  BodyCanonicalizer canon(c);
  std::string out;
  canon.update(body, out);
  canon.finish(out);
  return out;
}

BodyHasher::BodyHasher(Canonicalization c, crypto::HashAlgorithm algorithm, std::optional<uint64_t> limit)
    : canon_(c), hasher_(algorithm), limit_(limit) {}

void BodyHasher::consume(std::string_view canon) {
  // RFC 6376 §3.4.5: l= counts octets of the canonicalised body.
  if (!limit_ || total_ < *limit_) {
    uint64_t room = limit_ ? *limit_ - total_ : canon.size();
    hasher_.update(canon.substr(0, static_cast<size_t>(std::min<uint64_t>(room, canon.size()))));
  }
  total_ += canon.size();
}

void BodyHasher::update(std::string_view chunk) {
  buf_.clear();
  canon_.update(chunk, buf_);
  consume(buf_);
}

std::string BodyHasher::finish() {
  buf_.clear();
  canon_.finish(buf_);
  consume(buf_);
  return hasher_.finish();
}

}  // namespace hikyaku::auth::common
