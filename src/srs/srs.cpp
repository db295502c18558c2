#include "srs/srs.hpp"

#include <sys/stat.h>

#include <fstream>

#include "base/strings.hpp"
#include "crypto/hmac.hpp"

namespace hikyaku::srs {
namespace {

// RFC 4648 §6 base32 alphabet, as libsrs2 uses for the timestamp.
constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr int kTimestampSlots = 1024;  // 2 base32 characters = 10 bits of days
constexpr int64_t kSecondsPerDay = 86400;

bool is_separator(char c) { return c == '=' || c == '+' || c == '-'; }

// "SRS0=" / "SRS1=" (or the '+'/'-' separators libsrs2 also accepts).
bool has_tag(std::string_view local, char digit) {
  return local.size() > 4 && base::iequals(local.substr(0, 3), "SRS") && local[3] == digit &&
         is_separator(local[4]);
}

int64_t day_number(const base::Clock& clock) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
  int64_t days = secs / kSecondsPerDay;
  if (secs < 0 && secs % kSecondsPerDay != 0) --days;
  return days;
}

// Split off the text up to the next '='; false if there is none.
bool take_field(std::string_view& rest, std::string_view& field) {
  auto eq = rest.find('=');
  if (eq == std::string_view::npos) return false;
  field = rest.substr(0, eq);
  rest.remove_prefix(eq + 1);
  return true;
}

}  // namespace

std::string_view to_string(Errc e) {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::not_srs: return "not an SRS address";
    case Errc::malformed: return "malformed SRS address";
    case Errc::bad_hash: return "bad SRS hash";
    case Errc::expired: return "expired SRS address";
  }
  return "?";
}

std::string derive_identity_key(std::string_view secret, std::string_view identity) {
  return crypto::hmac_sha256(secret, "hikyaku-srs-hidden:" + base::to_lower(identity));
}

bool is_srs(std::string_view local) { return has_tag(local, '0') || has_tag(local, '1'); }

Rewriter::Rewriter(Config config, const base::Clock& clock) : config_(std::move(config)), clock_(clock) {
  HIKYAKU_CHECK(!config_.secrets.empty());
  HIKYAKU_CHECK(config_.hash_length > 0 && config_.hash_length <= 27);
}

// HMAC-SHA1 over the lowercased fields, base64, truncated (libsrs2's
// scheme; lowercasing makes the hash survive MTAs that lowercase local parts).
std::string Rewriter::hash(std::string_view secret, std::initializer_list<std::string_view> fields) const {
  std::string data;
  for (auto f : fields) data += base::to_lower(f);
  return base::base64_encode(crypto::hmac_sha1(secret, data)).substr(0, config_.hash_length);
}

// Every secret verifies; the comparison ignores case (local parts may be
// case-folded on the way back). The identities' derived keys are tried
// first: should a hash match both (a 2^-24 chance per address with 4
// characters), the bounce goes to the owner's mailbox rather than to the
// original sender, the fail-safe side for a hidden address.
std::optional<std::string> Rewriter::hash_owner(std::string_view given,
                                                std::initializer_list<std::string_view> fields) const {
  if (given.size() != config_.hash_length) return std::nullopt;
  std::string want_lower = base::to_lower(given);
  for (const auto& identity : config_.identities) {
    bool ok = false;
    for (const auto& secret : config_.secrets)
      ok |= crypto::constant_time_equal(base::to_lower(hash(derive_identity_key(secret, identity), fields)),
                                        want_lower);
    if (ok) return base::to_lower(identity);
  }
  bool ok = false;
  for (const auto& secret : config_.secrets)
    ok |= crypto::constant_time_equal(base::to_lower(hash(secret, fields)), want_lower);
  if (ok) return std::string();
  return std::nullopt;
}

std::string Rewriter::timestamp() const {
  auto slot = static_cast<size_t>(((day_number(clock_) % kTimestampSlots) + kTimestampSlots) % kTimestampSlots);
  std::string tt;
  tt += kBase32[slot >> 5];
  tt += kBase32[slot & 31];
  return tt;
}

// The stamp is a day number mod 1024; it is taken to lie in the past, so the
// age is the distance back from today modulo 1024 (as libsrs2 does).
bool Rewriter::timestamp_ok(std::string_view tt) const {
  int then = 0;
  for (char c : tt) {
    auto pos = kBase32.find(base::ascii_upper(c));
    if (pos == std::string_view::npos) return false;
    then = then * 32 + static_cast<int>(pos);
  }
  int now = static_cast<int>(((day_number(clock_) % kTimestampSlots) + kTimestampSlots) % kTimestampSlots);
  int age = ((now - then) % kTimestampSlots + kTimestampSlots) % kTimestampSlots;
  return age <= config_.max_age_days;
}

mail::Address Rewriter::forward(const mail::Address& sender, std::string_view srs_domain,
                                std::string_view identity) const {
  // A sender at our own domain needs no rewriting for SPF, but a hidden
  // forward's copy does need its identity: a bounce to it must find the
  // owner's fallback mailbox, not the sender (anyone may claim an address
  // of ours in MAIL FROM).
  if (sender.empty() || (identity.empty() && base::iequals(sender.domain, srs_domain))) return sender;
  const std::string secret =
      identity.empty() ? config_.secrets.front() : derive_identity_key(config_.secrets.front(), identity);
  mail::Address out;
  out.domain = base::to_lower(srs_domain);
  std::string_view local = sender.local;

  if (has_tag(local, '0')) {
    // Re-forwarding an SRS0 address: keep it whole behind the first
    // forwarder's host, so a bounce needs no trip through the middle.
    std::string_view inner = local.substr(4);  // "=HHHH=TT=domain=local", separator included
    out.local = "SRS1=" + hash(secret, {sender.domain, inner}) + "=" + sender.domain + "=" + std::string(inner);
    return out;
  }
  if (has_tag(local, '1')) {
    // Re-forwarding an SRS1 address: same first forwarder and SRS0 part, our hash.
    std::string_view rest = local.substr(5);
    std::string_view old_hash, host;
    if (take_field(rest, old_hash) && take_field(rest, host) && !host.empty() && !rest.empty() &&
        is_separator(rest.front())) {
      out.local = "SRS1=" + hash(secret, {host, rest}) + "=" + std::string(host) + "=" + std::string(rest);
      return out;
    }
    // Not well-formed: treat it as an ordinary local part below.
  }
  std::string tt = timestamp();
  out.local = "SRS0=" + hash(secret, {tt, sender.domain, local}) + "=" + tt + "=" + sender.domain + "=" +
              std::string(local);
  return out;
}

Decoded Rewriter::decode(const mail::Address& address) const {
  std::string_view local = address.local;
  if (has_tag(local, '0')) {
    // SRS0 sep HHHH "=" TT "=" domain "=" local (the local part may hold '=').
    std::string_view rest = local.substr(5);
    std::string_view h, tt, host;
    if (!take_field(rest, h) || !take_field(rest, tt) || !take_field(rest, host) || host.empty() ||
        rest.empty() || tt.size() != 2)
      return {Errc::malformed, {}};
    auto owner = hash_owner(h, {tt, host, rest});
    if (!owner) return {Errc::bad_hash, {}};
    if (!timestamp_ok(tt)) return {Errc::expired, {}};
    return {Errc::ok, mail::Address{std::string(rest), base::to_lower(host)}, std::move(*owner)};
  }
  if (has_tag(local, '1')) {
    // SRS1 sep HHHH "=" orighost "=" <SRS0 part with its own separator>.
    std::string_view rest = local.substr(5);
    std::string_view h, host;
    if (!take_field(rest, h) || !take_field(rest, host) || host.empty() || rest.size() < 2 ||
        !is_separator(rest.front()))
      return {Errc::malformed, {}};
    auto owner = hash_owner(h, {host, rest});
    if (!owner) return {Errc::bad_hash, {}};
    return {Errc::ok, mail::Address{"SRS0" + std::string(rest), base::to_lower(host)}, std::move(*owner)};
  }
  return {Errc::not_srs, {}};
}

base::Result<mail::Address> Rewriter::reverse(const mail::Address& address) const {
  Decoded d = decode(address);
  if (d.error != Errc::ok) return base::make_error(std::string(to_string(d.error)));
  return std::move(d.address);
}

std::optional<std::string> secret_file_warning(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || (st.st_mode & S_IROTH) == 0) return std::nullopt;
  return "the SRS secret file " + file.string() +
         " is readable by every user: chmod o-r (with it anyone can make SRS addresses that this server "
         "reverses and relays)";
}

base::Result<std::vector<std::string>> read_secrets(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return base::make_error("cannot read the SRS secret file " + file.string());
  std::vector<std::string> secrets;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto secret = base::trim(line);
    if (!secret.empty()) secrets.emplace_back(secret);
  }
  if (secrets.empty()) return base::make_error("the SRS secret file " + file.string() + " holds no secret");
  return secrets;
}

}  // namespace hikyaku::srs
