#include "config/reload.hpp"

#include <set>
#include <tuple>

namespace hikyaku::config {

namespace {

// (domain, selector, key file) of every domain that signs.
std::set<std::tuple<std::string, std::string, std::string>> signing_keys(const Config& config) {
  std::set<std::tuple<std::string, std::string, std::string>> out;
  for (const auto& d : config.domains) {
    if (!d.dkim || d.dkim_selector.empty() || d.dkim_key.empty()) continue;
    out.emplace(d.name, d.dkim_selector, d.dkim_key.string());
  }
  return out;
}

}  // namespace

const std::vector<std::string>& restart_only_settings() {
  static const std::vector<std::string> settings{
      "hostname", "data_dir", "user", "log_level", "log_format", "[listen]", "[access]", "[tls]",
      "[dns]",    "[delivery]", "[limits]", "[auth]", "[srs]", "[dmarc]", "[scan]", "[[domain]] dmarc_inbound and dkim keys"};
  return settings;
}

base::Result<Config> reloadable(const Config& running, Config next) {
  const auto before = signing_keys(running);
  const auto after = signing_keys(next);
  if (before != after) {
    std::string which;
    for (const auto& k : after)
      if (!before.contains(k)) which += (which.empty() ? "" : ", ") + std::get<0>(k);
    for (const auto& k : before)
      if (!after.contains(k)) which += (which.empty() ? "" : ", ") + std::get<0>(k);
    return base::make_error("the DKIM signing keys changed (" + which +
                            "): keys are read at start, so a restart is needed to add, remove or move one");
  }
  next.source = running.source;
  next.hostname = running.hostname;
  next.data_dir = running.data_dir;
  next.user = running.user;
  next.user_where = running.user_where;
  next.log_level = running.log_level;
  next.log_format = running.log_format;
  next.listen = running.listen;
  next.access = running.access;
  next.tls = running.tls;
  next.dns = running.dns;
  next.delivery = running.delivery;
  next.limits = running.limits;
  next.auth = running.auth;
  next.srs = running.srs;
  next.dmarc = running.dmarc;
  next.scan = running.scan;
  // Inbound DMARC per domain is intake's start-up setting: a domain keeps
  // the running value, a new one has the default ("tag").
  for (auto& d : next.domains) {
    const Domain* was = running.find_domain(d.name);
    d.dmarc_inbound = was != nullptr ? was->dmarc_inbound : Domain{}.dmarc_inbound;
  }
  return next;
}

}  // namespace hikyaku::config
