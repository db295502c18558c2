#include "delivery/callout_verifier.hpp"

// XXX(smtp-client): see smtp/client/session.cpp — GCC 12 -O2 false positive
// on Asio's coroutine frame allocator.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <algorithm>

#include "base/log.hpp"
#include "base/strings.hpp"
#include "delivery/smtp_agent.hpp"
#include "dns/async_resolver.hpp"
#include "dns/resolution.hpp"
#include "smtp/client/route.hpp"
#include "smtp/client/session.hpp"

namespace hikyaku::delivery {

namespace asio = net::asio;
using smtp::client::Outcome;

namespace {

std::shared_ptr<spdlog::logger> log() { return base::logger("smtp-client"); }

// dns::resolve_then as an awaitable (the io thread; the answer may be at
// hand at once, so the completion is posted, never called inline). Callers
// pass named objects (GCC 12 and temporaries in co_await argument lists:
// smtp/client/session.cpp).
net::awaitable<smtp::client::ResolvedRoute> resolve(dns::AsyncResolver& resolver, const config::NextHop& next_hop) {
  auto ex = co_await asio::this_coro::executor;
  // Named, not a temporary in the co_await expression (GCC 12).
  auto initiate = [&resolver, hop = next_hop, ex](auto handler) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    dns::resolve_then<smtp::client::ResolvedRoute>(
        resolver, [hop](dns::Resolver& view) { return smtp::client::resolve_next_hop(view, hop); },
        [h, ex](smtp::client::ResolvedRoute route) {
          asio::post(ex, [h, route = std::move(route)]() mutable { (*h)(std::move(route)); });
        });
  };
  smtp::client::ResolvedRoute route =
      co_await asio::async_initiate<decltype(net::use_awaitable), void(smtp::client::ResolvedRoute)>(
          initiate, net::use_awaitable);
  co_return route;
}

mail::Reply unknown(const mail::Address& rcpt) {
  return mail::Reply(550, "5.1.1", "<" + rcpt.str() + ">: Recipient address rejected: unknown user at the next hop");
}

mail::Reply cannot_ask(const mail::Address& rcpt) {
  return mail::Reply(451, "4.4.3", "<" + rcpt.str() + ">: Recipient address not verified yet: try again later");
}

}  // namespace

CalloutVerifier::CalloutVerifier(const base::Live<policy::Rules>& rules, dns::AsyncResolver& resolver,
                                 const SmtpAgent& agent, Settings settings)
    : rules_(rules), resolver_(resolver), agent_(agent), settings_(settings) {}

bool CalloutVerifier::wants(const mail::Address& rcpt) const {
  const auto rules = rules_.get();
  const config::Route* rule = rules->config().relay_route(rcpt.key());
  if (rule == nullptr || !rule->verify_recipients) return false;
  const std::string key = base::to_lower(rcpt.key());
  for (const auto& listed : rule->recipients)
    if (listed == key) return false;  // a static list needs no asking
  return true;
}

net::awaitable<std::optional<mail::Reply>> CalloutVerifier::verify(const mail::Address& rcpt) {
  const std::string key = base::to_lower(rcpt.key());
  const auto now = std::chrono::steady_clock::now();
  if (auto it = cache_.find(key); it != cache_.end()) {
    if (it->second.until > now) co_return it->second.refusal;
    cache_.erase(it);
  }
  // One generation of the rules for the whole question (held across the
  // suspensions: `rule` points into it).
  const auto rules = rules_.get();
  const config::Route* rule = rules->config().relay_route(key);
  if (rule == nullptr) co_return std::nullopt;  // the address book accepted it for another reason
  co_return co_await ask(rules->config(), *rule, rcpt);
}

net::awaitable<std::optional<mail::Reply>> CalloutVerifier::ask(const config::Config& config, const config::Route& rule,
                                                                const mail::Address& rcpt) {
  const std::string key = base::to_lower(rcpt.key());
  const std::string log_id = "verify";
  auto route = co_await resolve(resolver_, rule.via);
  if (route.failure) {
    log()->info("{}: <{}> not verified at {}: {}", log_id, rcpt.str(), rule.via.str(), route.failure->detail);
    co_return cannot_ask(rcpt);
  }
  // The client waits at RCPT: every step of the question is short (a next
  // hop that does not answer in time gets the 451 below).
  auto shared = agent_.options_for(rule, "");
  smtp::client::ClientOptions options = *shared;
  options.connect_timeout = std::min<smtp::client::Duration>(options.connect_timeout, settings_.timeout);
  options.command_timeout = std::min<smtp::client::Duration>(options.command_timeout.value_or(settings_.timeout),
                                                             settings_.timeout);
  std::string last = "no address";
  for (const auto& host : route.hosts) {
    for (const auto& ip : host.addresses) {
      if (config.listen.is_own(ip, rule.via.port)) continue;  // never ask ourselves
      auto opened = co_await smtp::client::Connection::open(host.name, ip, rule.via.port, options, log_id);
      if (!opened.connection) {
        last = opened.failure.detail;
        continue;
      }
      const std::string address = rcpt.str();
      Outcome outcome = co_await opened.connection->probe_recipient(address);
      co_await opened.connection->quit();
      log()->info("{}: <{}> at {}: {} ({})", log_id, rcpt.str(), opened.connection->peer(), outcome.status,
                  outcome.detail);
      if (outcome.delivered()) {
        remember(key, std::nullopt, settings_.positive_ttl);
        co_return std::nullopt;
      }
      if (outcome.kind == Outcome::Kind::permanent) {
        remember(key, unknown(rcpt), settings_.negative_ttl);
        co_return unknown(rcpt);
      }
      last = outcome.detail;
      if (!outcome.try_next_host) break;
    }
  }
  log()->info("{}: <{}> not verified at {}: {}", log_id, rcpt.str(), rule.via.str(), last);
  co_return cannot_ask(rcpt);
}

void CalloutVerifier::remember(const std::string& key, std::optional<mail::Reply> refusal, std::chrono::seconds ttl) {
  if (cache_.size() >= settings_.max_entries) {
    // Drop the entry closest to expiry (a bounded cache; a flood of
    // distinct addresses cannot grow it).
    auto oldest = cache_.begin();
    for (auto it = cache_.begin(); it != cache_.end(); ++it)
      if (it->second.until < oldest->second.until) oldest = it;
    cache_.erase(oldest);
  }
  cache_[key] = Answer{std::move(refusal), std::chrono::steady_clock::now() + ttl};
}

}  // namespace hikyaku::delivery
