#include "auth/dkim/signature.hpp"

#include <algorithm>

#include "auth/common/tag_list.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::dkim {

std::optional<Algorithm> parse_algorithm(std::string_view a) {
  if (base::iequals(a, "rsa-sha256")) return Algorithm::rsa_sha256;
  if (base::iequals(a, "rsa-sha1")) return Algorithm::rsa_sha1;
  if (base::iequals(a, "ed25519-sha256")) return Algorithm::ed25519_sha256;
  return std::nullopt;
}

std::string_view algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::rsa_sha256: return "rsa-sha256";
    case Algorithm::rsa_sha1: return "rsa-sha1";
    case Algorithm::ed25519_sha256: return "ed25519-sha256";
  }
  return "";
}

crypto::HashAlgorithm hash_of(Algorithm a) {
  return a == Algorithm::rsa_sha1 ? crypto::HashAlgorithm::sha1 : crypto::HashAlgorithm::sha256;
}

crypto::KeyType key_type_of(Algorithm a) {
  return a == Algorithm::ed25519_sha256 ? crypto::KeyType::ed25519 : crypto::KeyType::rsa;
}

bool is_valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253) return false;
  if (d.back() == '.') d.remove_suffix(1);
  for (auto label : base::split(d, '.')) {
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      bool ok = base::ascii_alnum(c) || c == '-' || c == '_';
      if (!ok) return false;
    }
  }
  return true;
}

base::Result<Signature> parse_signature(std::string_view value, SignatureKind kind) {
  auto tags = common::parse_tag_list(value);
  if (!tags) return tags.error();
  Signature sig;
  const auto& t = *tags;
  // RFC 6376 §6.1.1: required tags (v= only for DKIM; RFC 8617 §4.1.2 for AMS).
  for (const char* req : {"a", "b", "bh", "d", "h", "s"})
    if (!t.has(req)) return base::make_error(std::string("missing required tag ") + req);
  if (kind == SignatureKind::dkim) {
    auto v = t.find("v");
    if (!v) return base::make_error("missing required tag v");
    if (*v != "1") return base::make_error("unsupported version v=" + std::string(*v));  // RFC 6376 §3.5
    sig.v = *v;
  } else {
    if (!t.has("i")) return base::make_error("missing required tag i");
  }
  sig.a_text = *t.find("a");
  auto alg = parse_algorithm(sig.a_text);
  if (!alg) return base::make_error("unknown algorithm a=" + sig.a_text);
  sig.a = *alg;
  auto b = base::base64_decode(common::strip_whitespace(*t.find("b")));
  if (!b || b->empty()) return base::make_error("b= is not valid base64");
  sig.b = std::move(*b);
  auto bh = base::base64_decode(common::strip_whitespace(*t.find("bh")));
  if (!bh || bh->empty()) return base::make_error("bh= is not valid base64");
  sig.bh = std::move(*bh);
  if (auto c = t.find("c")) {
    auto pair = common::parse_canonicalization(*c);
    if (!pair) return base::make_error("invalid c=" + std::string(*c));
    sig.c = *pair;
  } else if (kind == SignatureKind::arc_message) {
    // RFC 8617 §4.1.2 builds on relaxed canonicalisation; an AMS without c=
    // is read as relaxed/relaxed (dkimpy, ValiMail ams_fields_c_na).
    sig.c = {common::Canonicalization::relaxed, common::Canonicalization::relaxed};
  }
  sig.d = base::to_lower(*t.find("d"));
  if (!is_valid_domain(sig.d)) return base::make_error("invalid d= domain");
  sig.s = std::string(*t.find("s"));
  if (!is_valid_domain(sig.s)) return base::make_error("invalid s= selector");
  for (auto name : base::split(*t.find("h"), ':')) {
    // Empty names ("h=from::to", "h=") select nothing; dkimpy and the
    // ValiMail suite accept them (for an AMS, "h=" signs only the AMS).
    std::string n = base::to_lower(common::strip_whitespace(name));
    if (!n.empty()) sig.h.push_back(std::move(n));
  }
  if (auto i = t.find("i")) sig.i = std::string(*i);
  if (auto l = t.find("l")) {
    auto n = base::parse_uint(*l);
    if (!n) return base::make_error("invalid l=");
    sig.l = n;
  }
  if (auto q = t.find("q")) {
    // RFC 6376 §3.5: q= must offer dns/txt, the only defined method.
    bool dns = false;
    for (auto m : base::split(*q, ':'))
      if (base::iequals(common::strip_whitespace(m), "dns/txt")) dns = true;
    if (!dns) return base::make_error("unsupported q=");
  }
  if (auto ts = t.find("t")) {
    auto n = base::parse_uint(*ts);
    if (!n) return base::make_error("invalid t=");
    sig.t = n;
  }
  if (auto x = t.find("x")) {
    auto n = base::parse_uint(*x);
    if (!n) return base::make_error("invalid x=");
    sig.x = n;
    // RFC 6376 §3.5: x= must be greater than t=.
    if (sig.t && *sig.x < *sig.t) return base::make_error("x= is before t=");
  }
  return sig;
}

std::vector<const common::HeaderField*> select_headers(const common::ParsedMessage& message,
                                                       const std::vector<std::string>& names) {
  std::vector<const common::HeaderField*> out;
  std::vector<bool> used(message.headers.size(), false);
  for (const auto& name : names) {
    for (size_t k = message.headers.size(); k-- > 0;) {
      if (used[k] || !base::iequals(common::field_name(message.headers[k]), name)) continue;
      used[k] = true;
      out.push_back(&message.headers[k]);
      break;
    }
  }
  return out;
}

std::string hash_headers(const std::vector<const common::HeaderField*>& fields, common::Canonicalization c,
                         std::string_view signature_field_raw, crypto::HashAlgorithm hash) {
  crypto::Hasher h(hash);
  for (const auto* f : fields) h.update(common::canonicalize_header(c, f->raw));
  std::string sig = common::canonicalize_header(c, common::remove_b_value(signature_field_raw));
  sig.resize(sig.size() - 2);  // RFC 6376 §3.7: without the trailing CRLF
  h.update(sig);
  return h.finish();
}

std::string format_field(std::string_view name, const std::vector<std::pair<std::string, std::string>>& tags,
                         FoldB fold_b) {
  std::string out(name);
  out += ":";
  size_t col = out.size();
  for (size_t k = 0; k < tags.size(); ++k) {
    const auto& [tag, value] = tags[k];
    std::string piece = tag + "=";
    bool last = k + 1 == tags.size();
    if (tag == "b") {
      out += k == 0 ? " " : "\r\n ";
      out += piece;
      // dkimpy folds b= in 72-column lines, "b=" included on the first.
      size_t first = fold_b == FoldB::yes ? 70 : value.size();
      size_t pos = 0;
      while (pos < value.size()) {
        size_t n = pos == 0 ? first : 72;
        if (pos > 0) out += "\r\n ";
        out += value.substr(pos, n);
        pos += n;
      }
      if (!last) out += ";";
      col = 80;  // force the next tag onto a new line
      continue;
    }
    piece += value;
    if (!last) piece += ";";
    if (col + 1 + piece.size() > 78 && k > 0) {
      out += "\r\n ";
      col = 1;
    } else {
      out += " ";
      col += 1;
    }
    out += piece;
    col += piece.size();
  }
  return out;
}

base::Result<std::string> sign_field(std::string_view name, std::vector<std::pair<std::string, std::string>> tags,
                                     const std::vector<const common::HeaderField*>& fields,
                                     common::Canonicalization c, const crypto::PrivateKey& key, Algorithm a,
                                     FoldB fold_b) {
  auto b = std::find_if(tags.begin(), tags.end(), [](const auto& t) { return t.first == "b"; });
  if (b == tags.end()) return base::make_error("no b= tag to fill");
  b->second.clear();
  std::string unsigned_field = format_field(name, tags, fold_b);
  std::string digest = hash_headers(fields, c, unsigned_field, hash_of(a));
  auto sig = crypto::sign_digest(key, hash_of(a), digest);
  if (!sig) return sig.error();
  b->second = base::base64_encode(*sig);
  return format_field(name, tags, fold_b) + "\r\n";
}

}  // namespace hikyaku::auth::dkim
