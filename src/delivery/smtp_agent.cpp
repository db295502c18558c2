#include "delivery/smtp_agent.hpp"

// XXX(smtp-client): see smtp/client/session.cpp — GCC 12 -O2 false positive
// on Asio's coroutine frame allocator.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <atomic>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>

#include "base/clock.hpp"
#include "base/log.hpp"
#include "delivery/destination_store.hpp"
#include "dns/resolver.hpp"
#include "mail/address.hpp"
#include "mail/dsn.hpp"
#include "net/asio.hpp"
#include "policy/fallback.hpp"
#include "smtp/client/session.hpp"
#include "srs/srs.hpp"

namespace hikyaku::delivery {

namespace asio = net::asio;
using net::awaitable;
using net::use_awaitable;
using smtp::client::Failure;
using smtp::client::Outcome;

namespace {

std::shared_ptr<spdlog::logger> log() { return base::logger("smtp-client"); }

queue::DeliveryOutcome to_queue(const Outcome& o) {
  queue::DeliveryOutcome out;
  out.kind = o.kind == Outcome::Kind::delivered   ? queue::DeliveryOutcome::Kind::delivered
             : o.kind == Outcome::Kind::permanent ? queue::DeliveryOutcome::Kind::permanent
                                                  : queue::DeliveryOutcome::Kind::temporary;
  out.status = o.status;
  out.detail = o.detail;
  return out;
}

// Run `f` on `pool` and resume the awaiting coroutine on its own executor
// with the result: blocking work (files, DNS, signing) never runs on the
// io_context thread. The worker wakes the coroutine by cancelling a timer
// through a post to the coroutine's (single-threaded) executor, so the
// wake-up cannot overtake the wait.
template <class F>
awaitable<std::invoke_result_t<F&>> on_pool(asio::thread_pool& pool, F f) {
  using T = std::invoke_result_t<F&>;
  struct State {
    explicit State(asio::any_io_executor ex) : timer(ex, std::chrono::steady_clock::time_point::max()) {}
    asio::steady_timer timer;
    std::optional<T> result;
  };
  auto state = std::make_shared<State>(co_await asio::this_coro::executor);
  asio::post(pool, [state, fn = std::move(f)]() mutable {
    state->result.emplace(fn());
    asio::post(state->timer.get_executor(), [state] { state->timer.cancel(); });
  });
  co_await state->timer.async_wait(asio::as_tuple(use_awaitable));
  co_return std::move(*state->result);
}

}  // namespace

// ---------------------------------------------------------------------------

base::Result<std::vector<std::string>> read_srs_secrets(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return base::make_error("cannot read the SRS secret file " + file.string());
  std::vector<std::string> secrets;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    secrets.push_back(line.substr(start));
  }
  if (secrets.empty()) return base::make_error("the SRS secret file " + file.string() + " holds no secret");
  return secrets;
}

ResolvedRoute resolve_route(dns::Resolver& resolver, std::string_view domain, std::string_view own_hostname,
                            std::mt19937& rng) {
  using smtp::client::classify;
  ResolvedRoute out;
  std::string d(domain);

  // RFC 5321 §5.1: "the SMTP client first looks up MX records"; NXDOMAIN
  // is final, a temporary error is retried later.
  auto mx = resolver.mx(d);
  if (mx.status == dns::Status::nxdomain) {
    out.failure = classify(Failure::dns_nxdomain, "domain " + d + " does not exist (NXDOMAIN)");
    return out;
  }
  if (mx.status != dns::Status::ok) {
    out.failure = classify(Failure::dns_temp, "MX lookup for " + d + " failed temporarily");
    return out;
  }
  std::vector<smtp::client::MxHost> hosts;
  for (const auto& r : mx.records) hosts.push_back({r.preference, r.exchange});
  if (!hosts.empty()) {
    // RFC 7505 §3: a lone "." MX: this domain accepts no mail.
    if (smtp::client::is_null_mx(hosts)) {
      out.failure = classify(Failure::null_mx, "domain " + d + " accepts no mail (null MX)");
      return out;
    }
    bool found_self = false;
    hosts = smtp::client::order_mx(std::move(hosts), own_hostname, rng, &found_self);
    if (hosts.empty()) {
      out.failure = found_self ? classify(Failure::loop, "mail for " + d + " loops back to myself (MX)")
                               : classify(Failure::unroutable, "no usable MX host for " + d);
      return out;
    }
  } else {
    // RFC 5321 §5.1: no MX records: the domain itself is the implicit MX.
    hosts.push_back({0, d});
  }

  // The addresses of each host, A before AAAA.
  bool temp = false;
  for (const auto& h : hosts) {
    smtp::client::RouteHost rh;
    rh.name = h.name;
    rh.preference = h.preference;
    auto a = resolver.a(h.name);
    auto aaaa = resolver.aaaa(h.name);
    if (a.status == dns::Status::temp_error || aaaa.status == dns::Status::temp_error) temp = true;
    for (const auto& ip : a.records) rh.addresses.push_back(ip.to_string());
    for (const auto& ip : aaaa.records) rh.addresses.push_back(ip.to_string());
    if (!rh.addresses.empty()) out.hosts.push_back(std::move(rh));
  }
  if (out.hosts.empty()) {
    out.failure = temp ? classify(Failure::dns_temp, "address lookup for the MX hosts of " + d + " failed temporarily")
                       : classify(Failure::unroutable, "no MX host of " + d + " has an address");
  }
  return out;
}

// ---------------------------------------------------------------------------

struct SmtpAgent::Impl : std::enable_shared_from_this<SmtpAgent::Impl> {
  Impl(const config::Config& config_in, asio::io_context& io_in, asio::thread_pool& pool_in,
       dns::Resolver& resolver_in, SmtpAgentOptions options_in, smtp::client::ClientOptions client_in)
      : config(config_in),
        io(io_in),
        pool(pool_in),
        resolver(resolver_in),
        options(std::move(options_in)),
        client(std::move(client_in)),
        connections(io_in.get_executor(), client),
        hidden(policy::hidden_addresses(config_in)) {}

  // One delivery in flight.
  struct Job {
    uint64_t id = 0;
    queue::DeliveryRequest request;  // request.envelope points at `envelope`
    mail::Envelope envelope;
    std::function<void(queue::DeliveryOutcome)> done;
    std::atomic<bool> finished{false};
  };

  // Per destination domain: concurrency slots and the rate-limit back-off.
  // Touched only on the io_context thread.
  struct Destination {
    unsigned active = 0;
    std::deque<std::shared_ptr<asio::steady_timer>> waiters;
    bool limited = false;
    std::chrono::steady_clock::duration spacing{0};
    std::chrono::steady_clock::time_point next_start{};
    // While limited: forgotten after this unless a deferral or a success
    // refreshes it (wall clock: it is written to the state file).
    std::chrono::system_clock::time_point until{};
  };

  // The rate-limit state file (DATA_DIR/state/destinations); null when the
  // configuration has no data_dir. Written after every change of a limited
  // destination, read back by create().
  std::unique_ptr<DestinationStore> store;

  std::chrono::system_clock::duration state_lifetime() const {
    return std::max<std::chrono::system_clock::duration>(options.state_lifetime, options.spacing_max);
  }

  // Save every limited destination (io thread; the write runs on the pool).
  void persist() {
    if (!store) return;
    std::vector<state::DestinationState> entries;
    for (const auto& [name, d] : destinations) {
      if (!d.limited) continue;
      entries.push_back({name, std::chrono::duration_cast<std::chrono::milliseconds>(d.spacing), d.until});
    }
    store->save(entries);
  }

  unsigned limit(const Destination& d) const {
    unsigned normal = std::max(1u, config.delivery.concurrency_per_domain);
    return d.limited ? std::max(1u, std::min(options.limited_concurrency, normal)) : normal;
  }

  awaitable<void> acquire(const std::string& domain) {
    auto ex = co_await asio::this_coro::executor;
    Destination& d = destinations[domain];  // std::map: references stay valid
    if (d.limited && std::chrono::system_clock::now() >= d.until) {
      // Not refreshed for state_lifetime: whatever the far side objected to
      // is long past (and a restart would have forgotten it too).
      d.limited = false;
      d.spacing = {};
      log()->info("{}: rate limit forgotten (no news for {} s): back to the normal rate", domain,
                  std::chrono::duration_cast<std::chrono::seconds>(state_lifetime()).count());
      wake(d, d.waiters.size());
      persist();
    }
    while (d.active >= limit(d)) {
      auto timer = std::make_shared<asio::steady_timer>(ex, std::chrono::steady_clock::time_point::max());
      d.waiters.push_back(timer);
      co_await timer->async_wait(asio::as_tuple(use_awaitable));  // cancelled by release()
    }
    ++d.active;
    if (d.limited) {
      // Spacing between message starts to a rate-limited destination.
      auto now = std::chrono::steady_clock::now();
      auto start = std::max(now, d.next_start);
      d.next_start = start + d.spacing;
      if (start > now) {
        asio::steady_timer t(ex, start);
        co_await t.async_wait(asio::as_tuple(use_awaitable));
      }
    }
  }

  void release(const std::string& domain) {
    Destination& d = destinations[domain];
    if (d.active > 0) --d.active;
    wake(d, 1);
  }

  static void wake(Destination& d, size_t n) {
    while (n-- > 0 && !d.waiters.empty()) {
      d.waiters.front()->cancel();
      d.waiters.pop_front();
    }
  }

  // Learn from an outcome: a rate-limit deferral slows the destination down;
  // success lets it speed up again.
  void learn(const std::string& domain, const Outcome& outcome, const std::string& queue_id) {
    Destination& d = destinations[domain];
    if (outcome.rate_limited) {
      auto initial = std::chrono::duration_cast<std::chrono::steady_clock::duration>(options.spacing_initial);
      auto max = std::chrono::duration_cast<std::chrono::steady_clock::duration>(options.spacing_max);
      d.spacing = d.limited ? std::min(d.spacing * 2, max) : initial;
      d.limited = true;
      // The deferred attempt was a message start too: the next one waits
      // the spacing (else the first retry follows the 421 at once).
      d.next_start = std::max(d.next_start, std::chrono::steady_clock::now() + d.spacing);
      d.until = std::chrono::system_clock::now() + state_lifetime();
      log()->warn("{}: {} is rate-limiting us ({}): at most {} connection(s), {} ms between messages", queue_id,
                  domain, outcome.detail, limit(d),
                  std::chrono::duration_cast<std::chrono::milliseconds>(d.spacing).count());
      persist();
    } else if (outcome.delivered() && d.limited) {
      d.spacing /= 2;
      d.until = std::chrono::system_clock::now() + state_lifetime();
      if (d.spacing < options.spacing_initial) {
        d.limited = false;
        d.spacing = {};
        log()->info("{}: {} accepts mail again at the normal rate", queue_id, domain);
        wake(d, d.waiters.size());
      }
      persist();
    }
  }

  awaitable<Outcome> run(std::shared_ptr<Job> job) {
    const auto& request = job->request;
    const std::string& target = request.target.value;

    // The message, transformed (ARC/DKIM later), read on the worker pool.
    auto transform = options.transform;
    // XXX(smtp-client): lambdas passed to coroutines are named locals, not
    // temporaries: GCC 12 destroys a temporary in a co_await full-expression
    // twice (GCC PR 99576-like), which corrupted the heap here.
    auto prepare = [job, transform]() -> std::optional<base::Result<std::string>> {
      auto data = queue::read_message(job->request);
      if (!data.ok() || !transform) return data;
      return transform(job->request, std::move(data).value());
    };
    auto message = co_await on_pool(pool, std::move(prepare));
    if (!message || !message->ok()) {
      std::string why = message ? message->error().message : "no message";
      log()->error("{}: cannot prepare the message for {}: {}", request.queue_id, mail::redact(target, hidden), why);
      co_return smtp::client::classify(Failure::local, "local error: cannot read or prepare the message");
    }

    // SRS: the forwarded copy's envelope sender (the null sender stays <>).
    std::string sender = job->envelope.sender_str();
    // A hidden forward signs with its own derived key (srs/srs.hpp), so a
    // bounce to this address is recognised as one of a hidden forward and
    // kept in the owner's fallback mailbox (issue 4, auth/inbound/srs_bounces).
    if (srs && job->envelope.sender) {
      const std::string identity = policy::is_hidden(config, job->request.target) ? job->request.target.value : "";
      sender = srs->forward(*job->envelope.sender, config.srs.domain, identity).str();
    }

    std::string domain = smtp::client::domain_of(target);
    if (domain.empty()) {
      Outcome o;
      o.kind = Outcome::Kind::permanent;
      o.status = "5.1.3";
      o.detail = "bad forward address";
      co_return o;
    }

    co_await acquire(domain);
    struct Release {
      Impl* impl;
      std::string domain;
      ~Release() { impl->release(domain); }
    } release_guard{this, domain};

    std::mt19937 rng(std::random_device{}());
    std::string hostname = config.hostname;
    auto lookup = [this, domain, hostname, rng]() mutable { return resolve_route(resolver, domain, hostname, rng); };
    auto route = co_await on_pool(pool, std::move(lookup));
    if (route.failure) {
      log()->info("{}: to=<{}> status={} ({})", request.queue_id, mail::redact(target, hidden), route.failure->status,
                  mail::redact(route.failure->detail, hidden));
      co_return *route.failure;
    }

    smtp::client::Transaction tx;
    tx.sender = std::move(sender);
    tx.recipient = target;
    tx.message = std::make_shared<const std::string>(std::move(*message).value());
    tx.smtputf8 = job->envelope.smtputf8;
    tx.log_id = request.queue_id;
    tx.hidden = hidden;
    smtp::client::RouteContext context{config.delivery.smtp_port, &config.listen};
    Outcome outcome = co_await smtp::client::deliver_via_route(connections, route.hosts, context, client, tx);
    learn(domain, outcome, request.queue_id);
    co_return outcome;
  }

  void finish(const std::shared_ptr<Job>& job, const Outcome& outcome) {
    if (job->finished.exchange(true)) return;  // exactly once
    {
      std::lock_guard lock(mu);
      in_flight.erase(job->id);
    }
    job->done(to_queue(outcome));
  }

  const config::Config& config;
  asio::io_context& io;
  asio::thread_pool& pool;
  dns::Resolver& resolver;
  SmtpAgentOptions options;
  smtp::client::ClientOptions client;
  std::unique_ptr<base::SystemClock> clock;
  std::unique_ptr<srs::Rewriter> srs;
  smtp::client::ConnectionPool connections;    // io thread only
  const std::vector<std::string> hidden;        // hidden forward addresses: never logged
  std::map<std::string, Destination> destinations;  // io thread only

  std::mutex mu;  // guards in_flight and next_id
  uint64_t next_id = 0;
  std::map<uint64_t, std::shared_ptr<Job>> in_flight;
};

base::Result<std::unique_ptr<SmtpAgent>> SmtpAgent::create(const config::Config& config, asio::io_context& io,
                                                            asio::thread_pool& pool, dns::Resolver& resolver,
                                                            SmtpAgentOptions options) {
  smtp::client::ClientOptions client =
      options.client ? *options.client : smtp::client::ClientOptions::from_config(config);
  auto impl = std::make_shared<Impl>(config, io, pool, resolver, std::move(options), std::move(client));
  if (!config.srs.domain.empty()) {
    auto secrets = read_srs_secrets(config.srs.secret_file);
    if (!secrets.ok()) return secrets.error();
    impl->clock = std::make_unique<base::SystemClock>();
    srs::Config sc;
    sc.secrets = std::move(secrets).value();
    impl->srs = std::make_unique<srs::Rewriter>(std::move(sc), *impl->clock);
  }
  // Rate-limit state from before a restart: those destinations start limited,
  // and their first message waits one spacing (when the last one started is
  // not recorded).
  if (!config.data_dir.empty()) {
    impl->store = std::make_unique<DestinationStore>(config.data_dir / "state" / "destinations", pool);
    for (const auto& e : impl->store->load(std::chrono::system_clock::now())) {
      auto& d = impl->destinations[e.domain];
      auto spacing = std::clamp(e.spacing, impl->options.spacing_initial,
                                std::max(impl->options.spacing_initial, impl->options.spacing_max));
      d.limited = true;
      d.spacing = std::chrono::duration_cast<std::chrono::steady_clock::duration>(spacing);
      d.next_start = std::chrono::steady_clock::now() + d.spacing;
      d.until = std::min(e.until, std::chrono::system_clock::now() + impl->state_lifetime());
      log()->warn("{} is still rate-limiting us (state from {}): at most {} connection(s), {} ms between messages",
                  e.domain, impl->store->file().string(), impl->limit(d), spacing.count());
    }
  }
  return std::unique_ptr<SmtpAgent>(new SmtpAgent(std::move(impl)));
}

SmtpAgent::SmtpAgent(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
SmtpAgent::~SmtpAgent() { stop(); }

void SmtpAgent::set_transform(MessageTransform transform) { impl_->options.transform = std::move(transform); }

void SmtpAgent::deliver(const queue::DeliveryRequest& request, std::function<void(queue::DeliveryOutcome)> done) {
  auto job = std::make_shared<Impl::Job>();
  job->request = request;
  if (request.envelope) job->envelope = *request.envelope;
  job->request.envelope = &job->envelope;
  job->done = std::move(done);
  {
    std::lock_guard lock(impl_->mu);
    job->id = ++impl_->next_id;
    impl_->in_flight.emplace(job->id, job);
  }
  // The scheduler calls from its worker threads: the work moves onto the
  // io_context; the completion handler is the one exception boundary.
  auto impl = impl_;
  asio::co_spawn(impl->io, impl->run(job), [impl, job](std::exception_ptr e, Outcome outcome) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log()->error("{}: bug: forward delivery threw: {}", job->request.queue_id, ex.what());
      } catch (...) {
        log()->error("{}: bug: forward delivery threw", job->request.queue_id);
      }
      outcome = smtp::client::classify(Failure::local, "local error (internal)");
    }
    impl->finish(job, outcome);
  });
}

void SmtpAgent::stop() {
  std::vector<std::shared_ptr<Impl::Job>> jobs;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, job] : impl_->in_flight) jobs.push_back(job);
  }
  Outcome o;
  o.kind = Outcome::Kind::temporary;
  o.status = "4.3.2";
  o.detail = "delivery interrupted by shutdown";
  for (auto& job : jobs) impl_->finish(job, o);
}

}  // namespace hikyaku::delivery
