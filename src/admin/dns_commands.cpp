#include "admin/dns_commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>

#include "base/file.hpp"
#include "base/strings.hpp"

namespace hikyaku::admin {
namespace {

// A host name as RFC 1035 §2.3.1 letters-digits-hyphen labels (underscores
// allowed, as selectors and some real names use them). Anything else could
// escape DATA_DIR/keys through the file name or break the zone syntax.
bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (auto label : base::split(name, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      bool ok = base::ascii_alnum(c) || c == '-' || c == '_';
      if (!ok) return false;
    }
  }
  return true;
}

// The TXT value of a DKIM key record (RFC 6376 §3.6.1; RFC 8463 §4 for k=).
std::string dkim_record_value(const crypto::PublicKey& key) {
  return "v=DKIM1; k=" + std::string(crypto::key_type_name(key.type())) + "; p=" + key.dkim_p();
}

std::string fqdn(std::string_view name) {
  std::string out(name);
  if (out.empty() || out.back() != '.') out += '.';
  return out;
}

// Write `data` to a new file with mode 0600, failing if the file exists
// (O_EXCL: no race with a second keygen), and fsync it. On failure nothing
// is left behind except when the file already existed.
base::Status write_new_secret_file(const std::filesystem::path& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    if (e == EEXIST) return base::make_error(path.string() + " already exists; choose another selector");
    return base::make_error("open " + path.string() + ": " + std::strerror(e));
  }
  // The umask may only remove bits; set 0600 explicitly anyway.
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t done = 0;
  while (ok && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int e = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    ::unlink(path.c_str());
    return base::make_error("write " + path.string() + ": " + std::strerror(e));
  }
  return base::fsync_directory(path.parent_path());
}

}  // namespace

std::string zone_txt_strings(std::string_view value) {
  // RFC 1035 §3.3.14: a character-string holds at most 255 octets; longer
  // values (RSA 2048 DKIM keys) are several strings that readers concatenate
  // (RFC 6376 §3.6.2.2, RFC 7208 §3.3).
  std::string out;
  do {
    std::string_view chunk = value.substr(0, 255);
    value.remove_prefix(chunk.size());
    if (!out.empty()) out += ' ';
    out += '"';
    for (char c : chunk) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  } while (!value.empty());
  return out;
}

int dkim_keygen(const config::Config& config, const std::string& domain_arg,
                const std::optional<std::string>& selector_arg, const std::string& algo, std::ostream& out,
                std::ostream& err) {
  // Sanity checks.
  std::string domain = base::to_lower(domain_arg);
  if (!domain.empty() && domain.back() == '.') domain.pop_back();
  if (!valid_dns_name(domain)) {
    err << "invalid domain name '" << domain_arg << "'\n";
    return 2;
  }
  // Where the configuration will look: its [[domain]]'s dkim_key, when it
  // names one (relative paths there are relative to the configuration file,
  // not to the data directory).
  const config::Domain* configured = config.find_domain(domain);
  const bool has_key_path = configured != nullptr && configured->dkim && !configured->dkim_key.empty();
  const std::string configured_selector = configured != nullptr ? configured->dkim_selector : std::string();
  if (selector_arg && !configured_selector.empty() && *selector_arg != configured_selector) {
    err << "[[domain]] " << domain << " in " << config.source.string() << " has dkim_selector = \""
        << configured_selector << "\"; run without --selector, or change dkim_selector first\n";
    return 2;
  }
  const std::string selector = selector_arg               ? *selector_arg
                               : !configured_selector.empty() ? configured_selector
                                                              : std::string(kDefaultDkimSelector);
  if (!valid_dns_name(selector)) {
    err << "invalid selector '" << selector << "' (letters, digits, '-', '_' and dots)\n";
    return 2;
  }
  crypto::KeyType type;
  if (algo == "rsa") {
    type = crypto::KeyType::rsa;
  } else if (algo == "ed25519") {
    type = crypto::KeyType::ed25519;
  } else {
    err << "unknown algorithm '" << algo << "' (rsa or ed25519)\n";
    return 2;
  }

  // Refuse before the (slow) RSA generation when the file is already there.
  const std::filesystem::path file = has_key_path ? std::filesystem::absolute(configured->dkim_key)
                                                  : config.data_dir / "keys" / (domain + "." + selector + ".pem");
  const std::filesystem::path dir = file.parent_path();
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    err << file.string() << " already exists; choose another selector\n";
    return 1;
  }

  // Generate: RSA 2048 (RFC 8301 §3.2) or Ed25519 (RFC 8463).
  auto key = crypto::generate_key(type, 2048);
  if (!key) {
    err << "key generation failed: " << key.error().message << "\n";
    return 1;
  }
  if (auto st = base::ensure_directory(dir, 0700); !st) {
    err << st.error().message << "\n";
    return 1;
  }
  if (auto st = write_new_secret_file(file, key->to_pem()); !st) {
    err << st.error().message << "\n";
    return 1;
  }

  // What the operator does next: publish, then configure.
  std::string owner_name = selector + "._domainkey." + domain + ".";
  out << "; private key written to " << file.string() << " (mode 0600)\n";
  out << "; publish this DNS record:\n";
  out << owner_name << " IN TXT " << zone_txt_strings(dkim_record_value(key->public_key())) << "\n";
  out << "\n";
  if (configured == nullptr) {
    out << "# " << domain << " is not a [[domain]] in " << config.source.string() << " yet; add:\n"
        << "[[domain]]\nname = \"" << domain << "\"\n";
  } else if (has_key_path && !configured_selector.empty()) {
    out << "# the [[domain]] table of " << domain << " in " << config.source.string()
        << " already names this key and selector: nothing to change there\n";
    return 0;
  } else {
    out << "# then set in the [[domain]] table of " << domain << " in " << config.source.string() << ":\n";
  }
  out << "dkim_selector = \"" << selector << "\"\n";
  if (!has_key_path) out << "dkim_key = \"" << file.string() << "\"\n";
  if (configured != nullptr && !configured->dkim) out << "dkim = true\n";
  return 0;
}

std::string ZoneRecord::line() const {
  std::string out = owner;
  for (size_t i = owner.size(); i < 40; ++i) out += ' ';
  out += " IN " + type + " ";
  out += type == "TXT" ? zone_txt_strings(data) : data;
  return out;
}

std::string ZoneRecord::text() const {
  return owner + " IN " + type + " " + (type == "TXT" ? zone_txt_strings(data) : data);
}

ZoneRecord mx_record(const config::Config& config, std::string_view domain) {
  return {fqdn(domain), "MX", "10 " + fqdn(base::to_lower(config.hostname))};
}

ZoneRecord spf_record(std::string_view domain) { return {fqdn(domain), "TXT", "v=spf1 mx -all"}; }

ZoneRecord helo_spf_record(const config::Config& config) {
  return {fqdn(base::to_lower(config.hostname)), "TXT", "v=spf1 a -all"};
}

bool helo_needs_spf(const config::Config& config) {
  std::string host = base::to_lower(config.hostname);
  if (host.ends_with('.')) host.pop_back();
  return config.find_domain(host) == nullptr && !base::iequals(host, config.srs.domain);
}

ZoneRecord dkim_record(std::string_view selector, std::string_view domain, const crypto::PublicKey& key) {
  return {std::string(selector) + "._domainkey." + fqdn(domain), "TXT", dkim_record_value(key)};
}

ZoneRecord dmarc_record(std::string_view domain) {
  // Relaxed alignment (RFC 7489 §3.1) keeps subdomain senders aligned.
  return {"_dmarc." + fqdn(domain), "TXT", "v=DMARC1; p=quarantine; adkim=r; aspf=r"};
}

int dns_records(const config::Config& config, std::ostream& out, std::ostream& err) {
  if (config.domains.empty()) {
    err << "no [[domain]] in " << config.source.string() << "\n";
    return 1;
  }
  int status = 0;
  std::string mx_host = fqdn(base::to_lower(config.hostname));
  out << "; DNS records to publish for hikyaku (zone-file syntax).\n";
  out << "; " << mx_host << " must also have A/AAAA records for this server, and their PTR\n";
  out << "; records must name " << mx_host << " (receivers check forward-confirmed reverse DNS).\n";
  if (helo_needs_spf(config)) {
    out << "\n; " << mx_host << " (the HELO name: receivers check its SPF for notices and DSNs, sent with a null sender)\n";
    out << helo_spf_record(config).line() << "\n";
  }
  for (const auto& domain : config.domains) {
    out << "\n; " << domain.name << "\n";
    out << mx_record(config, domain.name).line() << "\n";
    out << spf_record(domain.name).line() << "\n";
    if (domain.dkim_selector.empty() || domain.dkim_key.empty()) {
      out << "; no DKIM key configured: run `hikyaku dkim keygen " << domain.name << " --config "
          << config.source.string() << "`\n";
    } else {
      auto text = base::read_file(domain.dkim_key);
      auto key = text ? crypto::load_private_key(*text) : base::Result<crypto::PrivateKey>(text.error());
      if (!key) {
        err << domain.name << ": cannot read DKIM key " << domain.dkim_key.string() << ": " << key.error().message
            << "\n";
        out << "; DKIM key " << domain.dkim_key.string() << " unreadable (see the error above)\n";
        status = 1;
      } else {
        out << dkim_record(domain.dkim_selector, domain.name, key->public_key()).line() << "\n";
      }
    }
    out << dmarc_record(domain.name).line() << "\n";
  }
  // The envelope sender of forwarded mail: receivers check its SPF, and
  // bounces to SRS addresses must come back here.
  if (!config.srs.domain.empty() && config.find_domain(config.srs.domain) == nullptr) {
    const std::string srs_domain = base::to_lower(config.srs.domain);
    out << "\n; " << srs_domain << " ([srs] domain: envelope sender of forwarded mail)\n";
    out << mx_record(config, srs_domain).line() << "\n";
    out << spf_record(srs_domain).line() << "\n";
  }
  return status;
}

}  // namespace hikyaku::admin
