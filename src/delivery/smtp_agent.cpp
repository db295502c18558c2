#include "delivery/smtp_agent.hpp"

// XXX(smtp-client): see smtp/client/session.cpp — GCC 12 -O2 false positive
// on Asio's coroutine frame allocator.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <algorithm>
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
  Impl(const config::Config& config_in, asio::io_context& io_in, dns::Resolver& resolver_in, SmtpAgentOptions options_in, smtp::client::ClientOptions client_in)
      : config(config_in),
        io(io_in),
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
    std::string reason;  // the last rate-limit reply (for messages that give up waiting)
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

  // A concurrency slot for `domain` (and, while it is rate-limited, the
  // spacing after the previous start). false: none before `deadline` (the
  // slot's defer_limit), so the scheduler can divert on time instead of the
  // message waiting behind a slowed-down destination.
  awaitable<bool> acquire(const std::string& domain, std::chrono::steady_clock::time_point deadline) {
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
      auto timer = std::make_shared<asio::steady_timer>(ex, deadline);
      d.waiters.push_back(timer);
      auto [ec] = co_await timer->async_wait(asio::as_tuple(use_awaitable));  // cancelled by release()
      if (!ec) {
        // The deadline passed first: leave the queue (a later release()
        // must wake someone who still waits).
        d.waiters.erase(std::remove(d.waiters.begin(), d.waiters.end(), timer), d.waiters.end());
        co_return false;
      }
    }
    if (d.limited) {
      // Spacing between message starts to a rate-limited destination.
      auto now = std::chrono::steady_clock::now();
      auto start = std::max(now, d.next_start);
      if (start > deadline) {
        wake(d, 1);  // the slot we did not take
        co_return false;
      }
      ++d.active;
      d.next_start = start + d.spacing;
      if (start > now) {
        asio::steady_timer t(ex, start);
        co_await t.async_wait(asio::as_tuple(use_awaitable));
      }
      co_return true;
    }
    ++d.active;
    co_return true;
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
      d.reason = outcome.detail;
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

  // Everything before the SMTP conversation, on the caller's (scheduler
  // worker) thread: the message read and transformed (ARC/DKIM), the SRS
  // sender, the route (MX, A, AAAA; cached). No thread hop before the
  // connection, so a fresh message reaches the far side while the first
  // hop's spool is still syncing (Scheduler::submit_staged).
  struct Prepared {
    std::optional<Outcome> failure;  // set: done, nothing to send
    smtp::client::Transaction tx;
    std::string domain;
    std::vector<smtp::client::RouteHost> hosts;
  };

  // The message to send and its route, with DNS through `dns`. `quiet`:
  // failures are not logged (deliver_now() declines them; deliver() redoes
  // the work and logs).
  Prepared prepare(const Job& job, dns::Resolver& dns, bool quiet = false) {
    Prepared p;
    const auto& request = job.request;
    const std::string& target = request.target.value;

    auto data = queue::read_message(request);
    if (data.ok() && options.transform.apply) data = options.transform.apply(request, std::move(data).value(), dns);
    if (!data.ok()) {
      if (!quiet) log()->error("{}: cannot prepare the message for {}: {}", request.queue_id, mail::redact(target, hidden),
                   data.error().message);
      p.failure = smtp::client::classify(Failure::local, "local error: cannot read or prepare the message");
      return p;
    }

    // SRS: the forwarded copy's envelope sender (the null sender stays <>).
    std::string sender = job.envelope.sender_str();
    // A hidden forward signs with its own derived key (srs/srs.hpp), so a
    // bounce to this address is recognised as one of a hidden forward and
    // kept in the owner's fallback mailbox (issue 4, auth/inbound/srs_bounces).
    if (srs && job.envelope.sender) {
      const std::string identity = policy::is_hidden(config, request.target) ? request.target.value : "";
      sender = srs->forward(*job.envelope.sender, config.srs.domain, identity).str();
    }

    p.domain = smtp::client::domain_of(target);
    if (p.domain.empty()) {
      Outcome o;
      o.kind = Outcome::Kind::permanent;
      o.status = "5.1.3";
      o.detail = "bad forward address";
      p.failure = o;
      return p;
    }

    thread_local std::mt19937 rng(std::random_device{}());
    auto route = resolve_route(dns, p.domain, config.hostname, rng);
    if (route.failure) {
      if (!quiet) log()->info("{}: to=<{}> status={} ({})", request.queue_id, mail::redact(target, hidden), route.failure->status,
                  mail::redact(route.failure->detail, hidden));
      p.failure = std::move(route.failure);
      return p;
    }
    p.hosts = std::move(route.hosts);

    p.tx.sender = std::move(sender);
    p.tx.recipient = target;
    p.tx.message = std::make_shared<const std::string>(std::move(data).value());
    p.tx.smtputf8 = job.envelope.smtputf8;
    p.tx.log_id = request.queue_id;
    p.tx.hidden = hidden;
    // Opportunistic TLS (smtp/client/session.hpp): plaintext after a failed
    // handshake only when this target was attempted before.
    p.tx.plaintext_after_tls_failure = request.attempts > 0;
    return p;
  }

  // The SMTP conversation, on the io_context: a concurrency slot for the
  // destination, then the route's hosts in order.
  awaitable<Outcome> send(std::shared_ptr<Job> job, std::shared_ptr<Prepared> p) {
    auto deadline = std::chrono::steady_clock::time_point::max();
    if (job->request.deadline != base::Clock::time_point{}) {
      auto left = job->request.deadline - std::chrono::system_clock::now();
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::max(left, left.zero()));
    }
    const bool admitted = co_await acquire(p->domain, deadline);
    if (!admitted) {
      Outcome o;
      o.kind = Outcome::Kind::temporary;
      o.status = "4.4.5";  // RFC 3463: mail system congestion
      const std::string& reason = destinations[p->domain].reason;
      o.detail = p->domain + " is rate-limiting us" + (reason.empty() ? "" : " (" + reason + ")") +
                 ": no connection before the defer limit";
      log()->info("{}: to=<{}> status={} ({})", job->request.queue_id, mail::redact(p->tx.recipient, hidden),
                  o.status, o.detail);
      co_return o;
    }
    struct Release {
      Impl* impl;
      std::string domain;
      ~Release() { impl->release(domain); }
    } release_guard{this, p->domain};

    smtp::client::RouteContext context{config.delivery.smtp_port, &config.listen};
    Outcome outcome = co_await smtp::client::deliver_via_route(connections, p->hosts, context, client, p->tx);
    learn(p->domain, outcome, job->request.queue_id);
    co_return outcome;
  }

  static std::shared_ptr<Job> make_job(const queue::DeliveryRequest& request,
                                       std::function<void(queue::DeliveryOutcome)> done) {
    auto job = std::make_shared<Job>();
    job->request = request;
    if (request.envelope) job->envelope = *request.envelope;
    job->request.envelope = &job->envelope;
    job->done = std::move(done);
    return job;
  }

  // In flight from here on: stop() reports it if the io_context never runs it.
  void track(const std::shared_ptr<Job>& job) {
    std::lock_guard lock(mu);
    job->id = ++next_id;
    in_flight.emplace(job->id, job);
  }

  // A prepared job: its failure reported, or its conversation spawned on
  // the io_context; the completion handler is the one exception boundary.
  void start(const std::shared_ptr<Job>& job, std::shared_ptr<Prepared> prepared) {
    if (prepared->failure) {
      finish(job, *prepared->failure);
      return;
    }
    auto self = shared_from_this();
    asio::co_spawn(io, send(job, std::move(prepared)), [self, job](const std::exception_ptr& e, Outcome outcome) {
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
      self->finish(job, outcome);
    });
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
  auto impl = std::make_shared<Impl>(config, io, resolver, std::move(options), std::move(client));
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
  auto job = Impl::make_job(request, std::move(done));
  impl_->track(job);
  // The scheduler calls from its worker threads: the preparation runs here,
  // the conversation moves onto the io_context.
  auto prepared = std::make_shared<Impl::Prepared>(impl_->prepare(*job, impl_->resolver));
  impl_->start(job, std::move(prepared));
}

bool SmtpAgent::deliver_now(const queue::DeliveryRequest& request, std::function<void(queue::DeliveryOutcome)> done) {
  // On the io_context thread: only from memory, with a cheap transform and
  // the route's answers cached; everything else is deliver()'s.
  const auto& transform = impl_->options.transform;
  if (!request.message) return false;
  if (transform.apply && !(transform.cheap && transform.cheap(request))) return false;
  auto job = Impl::make_job(request, std::move(done));
  dns::CacheOnlyResolver cached(impl_->resolver);
  auto prepared = std::make_shared<Impl::Prepared>(impl_->prepare(*job, cached, /*quiet=*/true));
  if (cached.missed() || prepared->failure) return false;
  log()->debug("{}: forward started from the event loop", request.queue_id);
  impl_->track(job);
  impl_->start(job, std::move(prepared));
  return true;
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
