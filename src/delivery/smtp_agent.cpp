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
#include "base/file.hpp"
#include "base/log.hpp"
#include "delivery/destination_store.hpp"
#include "delivery/state/destination_pace.hpp"
#include "dns/async_resolver.hpp"
#include "dns/resolution.hpp"
#include "mail/address.hpp"
#include "mail/dsn.hpp"
#include "net/asio.hpp"
#include "mail/header.hpp"
#include "policy/forwards.hpp"
#include "policy/loop.hpp"
#include "scan/protocol/verdict.hpp"
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

using policy::AttemptResult;

// The client's outcome as the delivery policy reads it. `cause` names the
// rows that are not a plain reply (policy/slot.hpp).
AttemptResult to_result(const Outcome& o, AttemptResult::Cause cause = AttemptResult::Cause::reply) {
  AttemptResult out;
  out.kind = o.kind == Outcome::Kind::delivered   ? AttemptResult::Kind::delivered
             : o.kind == Outcome::Kind::permanent ? AttemptResult::Kind::permanent
                                                  : AttemptResult::Kind::temporary;
  out.status = o.status;
  out.detail = o.detail;
  out.cause = cause;
  out.tls = o.tls;
  if (cause == AttemptResult::Cause::reply && o.status == "5.4.6") out.cause = AttemptResult::Cause::loop;
  return out;
}

// What stop() reports for a delivery it cuts short, and deliver() after it.
AttemptResult interrupted_by_shutdown() {
  Outcome o;
  o.kind = Outcome::Kind::temporary;
  o.status = "4.3.2";
  o.detail = "delivery interrupted by shutdown";
  return to_result(o, AttemptResult::Cause::local);
}

constexpr size_t kMaxHeaderRead = 256 * 1024;
// Room reserved in a forward's copy for the fields added in place
// (X-Forwarded-To/-For, X-Hikyaku-Diverted, the ARC set, DKIM-Signature).
constexpr size_t kAddedRoom = 16 * 1024;

}  // namespace

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------

struct SmtpAgent::Impl : std::enable_shared_from_this<SmtpAgent::Impl> {
  Impl(const base::Live<policy::Rules>& rules_in, asio::io_context& io_in, asio::thread_pool& pool_in,
       dns::AsyncResolver& resolver_in, std::shared_ptr<const ForwardTransform> transform_in,
       SmtpAgentOptions options_in, smtp::client::ClientOptions client_in)
      : rules(rules_in),
        concurrency_per_domain(rules_in.get()->config().delivery.concurrency_per_domain),
        io(io_in),
        pool(pool_in),
        resolver(resolver_in),
        transform(std::move(transform_in)),
        options(std::move(options_in)),
        client(std::move(client_in)),
        connections(io_in.get_executor(), client) {
    const config::Delivery& delivery = rules_in.get()->config().delivery;
    pace_options.pause = std::chrono::duration_cast<std::chrono::milliseconds>(delivery.rate_limit_pause);
    pace_options.normal = std::max(1u, concurrency_per_domain);
    pace_options.lifetime = options.state_lifetime;
  }

  // One delivery in flight.
  struct Job {
    uint64_t id = 0;
    queue::DeliveryRequest request;  // request.envelope points at `envelope`
    mail::Envelope envelope;
    std::shared_ptr<const mail::Message> message;  // as spooled (read once, by begin(); shared, not copied)
    std::function<void(AttemptResult)> done;
    std::atomic<bool> finished{false};
    // The rules current when the attempt began: its whole course (loop
    // check, route, SRS identity, transform, redaction) reads these.
    std::shared_ptr<const policy::Rules> rules;
    const config::Config& config() const { return rules->config(); }
    const std::vector<std::string>& hidden() const { return rules->hidden(); }
  };

  // Per destination domain: concurrency slots and the rate-limit pause and
  // ramp (state/destination_pace.hpp). Touched only on the io_context thread.
  struct Destination {
    unsigned active = 0;
    std::deque<std::shared_ptr<asio::steady_timer>> waiters;
    state::DestinationPace pace;
    std::string reason;  // the last rate-limit reply (for messages that give up waiting)
  };

  // The rate-limit state file (DATA_DIR/state/destinations); null when the
  // configuration has no data_dir. Written after every change of a limited
  // destination, read back by create().
  std::unique_ptr<DestinationStore> store;

  // Save every limited destination (io thread; the write runs on the pool).
  void persist() {
    if (!store) return;
    std::vector<state::DestinationState> entries;
    for (const auto& [name, d] : destinations)
      if (d.pace.limited()) entries.push_back(d.pace.saved(name));
    store->save(entries);
  }

  // Forget a limit that had no news for its lifetime (then everyone waiting
  // may go).
  void expire(const std::string& domain, Destination& d, std::chrono::system_clock::time_point now) {
    if (!d.pace.expire(now)) return;
    log()->info("{}: rate limit forgotten (no news for {} s): back to the normal rate", domain,
                pace_options.lifetime.count());
    wake(d, d.waiters.size());
    persist();
  }

  // A concurrency slot for `domain`, or when the destination can take a
  // connection again. While it is paused after a rate-limit reply nothing
  // waits here: the attempt ends at once with `paused_until`, and the queue
  // retries the message then (policy: AttemptResult::not_before), so a
  // paused destination holds no place among the deliveries in flight.
  // During the ramp, and at the normal rate, a message waits for a busy
  // connection to be released (a success allows one more) until `deadline`
  // (the slot's defer_limit), so the scheduler diverts on time.
  struct Admission {
    bool admitted = false;
    std::chrono::system_clock::time_point paused_until{};  // epoch: not paused
  };
  awaitable<Admission> acquire(const std::string& domain, std::chrono::system_clock::time_point deadline) {
    auto ex = co_await asio::this_coro::executor;
    Destination& d = destinations[domain];  // std::map: references stay valid
    for (;;) {
      const auto now = std::chrono::system_clock::now();
      expire(domain, d, now);
      if (const auto resume = d.pace.next_start(now); resume > now) co_return Admission{false, resume};
      if (d.pace.may_start(now, d.active, pace_options)) {
        ++d.active;
        co_return Admission{true, {}};
      }
      // Every allowed connection is busy: wait for release() (or a success
      // that allows one more), at most until the deadline. (An attempt at
      // its deadline that needs no waiting is that slot's last chance: it
      // goes on above.)
      if (now >= deadline) co_return Admission{};
      const auto wait_until = deadline == std::chrono::system_clock::time_point::max()
                                  ? std::chrono::steady_clock::time_point::max()
                                  : std::chrono::steady_clock::now() +
                                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline - now);
      auto timer = std::make_shared<asio::steady_timer>(ex, wait_until);
      d.waiters.push_back(timer);
      auto [ec] = co_await timer->async_wait(asio::as_tuple(use_awaitable));  // cancelled by wake()
      if (!ec) {
        // The deadline passed first: leave the queue (a later release()
        // must wake someone who still waits).
        d.waiters.erase(std::remove(d.waiters.begin(), d.waiters.end(), timer), d.waiters.end());
        co_return Admission{};
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

  // Learn from an outcome: a rate-limit reply pauses the destination; a
  // success during the ramp allows one more connection. The reply is kept
  // (the state file, the status page) and logged with every hidden address
  // redacted: Gmail's text may quote the recipient.
  void learn(const std::string& domain, const Outcome& outcome, const std::string& queue_id,
             const std::vector<std::string>& hidden) {
    Destination& d = destinations[domain];
    const auto now = std::chrono::system_clock::now();
    if (outcome.rate_limited) {
      d.reason = mail::redact(outcome.detail, hidden);
      if (!d.pace.rate_limited(now, pace_options)) {
        log()->info("{}: {} is rate-limiting us ({}): already paused", queue_id, domain, d.reason);
        return;
      }
      log()->warn("{}: {} is rate-limiting us ({}): no connection for {} s, then one at a time", queue_id, domain,
                  d.reason, std::chrono::duration_cast<std::chrono::seconds>(d.pace.pause()).count());
      persist();
    } else if (outcome.delivered() && d.pace.succeeded(now, pace_options)) {
      if (!d.pace.limited()) {
        log()->info("{}: {} accepts mail again at the normal rate", queue_id, domain);
        wake(d, d.waiters.size());
      } else {
        log()->info("{}: {} accepted a message: now {} connection(s) at once", queue_id, domain,
                    d.pace.allowed(now, pace_options));
        wake(d, 1);  // the connection the success added
      }
      persist();
    }
  }

  // Everything before the SMTP conversation, in three steps, so that no
  // step waits and nothing costly runs on the event loop:
  // 1. begin(), on the caller's thread (a queue thread may block; on the
  //    event loop the message is in memory): the message read and the loop
  //    check (RFC 5321 §6.3: 5.4.6 before anything else).
  // 2. resolve(), on the event loop: one sans-I/O decision over DNS
  //    (dns::resolve_then): the DMARC "divert" verdict and the assessment
  //    the transform needs (the author domain's DMARC record), and the route
  //    (MX, A, AAAA). It is re-run as answers arrive; it never waits.
  // 3. prepared(): the forward headers, the SRS sender and the transform
  //    (ARC set, From rewrite, DKIM) over the decision's own answers — on
  //    the blocking pool when it signs (an RSA signature is ≈0.3 ms), else
  //    on the loop — then the conversation.
  struct Prepared {
    smtp::client::Transaction tx;
    std::string domain;
    std::vector<smtp::client::RouteHost> hosts;
    uint16_t port = 25;
    // The session options: the agent's own, or a [[route]]'s (HELO name,
    // TLS requirement, login).
    std::shared_ptr<const smtp::client::ClientOptions> client;
  };
  struct Decision {
    std::optional<AttemptResult> divert;  // dmarc = "divert" and DMARC would fail
    smtp::client::ResolvedRoute route;
    const config::Route* rule = nullptr;  // the [[route]] to another host, if one matched
  };

  // The session options for mail from `sender` through `rule`.
  std::shared_ptr<const smtp::client::ClientOptions> route_options(const config::Route& rule,
                                                                   const std::string& sender) const {
    auto o = std::make_shared<smtp::client::ClientOptions>(client);
    if (!rule.helo.empty()) o->helo_name = rule.helo;
    o->starttls = rule.tls != config::RouteTls::none;
    o->require_tls = rule.tls == config::RouteTls::required || rule.tls == config::RouteTls::verify;
    std::lock_guard lock(route_mu);
    if (rule.tls == config::RouteTls::verify) {
      o->verify_certificate = true;
      o->tls_context = verifying_contexts.at(rule.tls_ca_file);  // prepare_routes() made it
    }
    if (const config::RouteAccount* account = rule.account_for(sender)) {
      auto password = passwords.find(account->password_file);
      if (password != passwords.end())
        o->login = smtp::client::ClientLogin{account->user, password->second, rule.mechanisms};
    }
    return o;
  }

  // Issue 17: the source address and EHLO name of this attempt's rules —
  // the forward's own when its [[forward]] sets them, else [delivery]'s; a
  // [[route]]'s helo wins over source_name. `base` when nothing differs.
  static std::shared_ptr<const smtp::client::ClientOptions> with_source(
      std::shared_ptr<const smtp::client::ClientOptions> base, const config::Config& config, const mail::Target& target,
      const config::Route* rule) {
    config::SourceAddress source = config.delivery.source_address;
    std::string name = config.delivery.source_name;
    if (target.kind == mail::Target::Kind::forward) {
      if (const config::Forward* f = config.find_forward(target.value)) {
        if (!f->source_address.empty()) source = f->source_address;
        if (!f->source_name.empty()) name = f->source_name;
      }
    }
    const bool rule_helo = rule != nullptr && !rule->helo.empty();
    const bool new_name = !name.empty() && !rule_helo && base->helo_name != name;
    if (base->source == source && !new_name) return base;
    auto o = std::make_shared<smtp::client::ClientOptions>(*base);
    o->source = std::move(source);
    if (new_name) o->helo_name = std::move(name);
    return o;
  }

  void begin(const std::shared_ptr<Job>& job) {
    const auto& request = job->request;
    auto data = queue::read_message(request);
    if (!data.ok()) {
      log()->error("{}: cannot read the message for {}: {}", request.queue_id,
                   mail::redact(request.target.value, job->hidden()), data.error().message);
      finish(job, to_result(smtp::client::classify(Failure::local, "local error: cannot read the message"),
                            AttemptResult::Cause::local));
      return;
    }
    // RFC 5321 §6.3: a forward that would loop is not sent (5.4.6).
    const std::string_view head = mail::header_section(std::string_view((*data)->text).substr(0, kMaxHeaderRead));
    if (auto why = policy::loop_reason(job->config(), head, request.origin, request.recipient, request.target)) {
      finish(job, AttemptResult{AttemptResult::Kind::permanent, "5.4.6", *why, AttemptResult::Cause::loop});
      return;
    }
    if (mail::domain_of(request.target.value).empty()) {
      finish(job, AttemptResult{AttemptResult::Kind::permanent, "5.1.3", "bad forward address"});
      return;
    }
    job->message = std::move(data).value();
    asio::dispatch(io, [self = shared_from_this(), job] { self->resolve(job); });
  }

  void resolve(const std::shared_ptr<Job>& job) {
    if (job->finished) return;  // stop() reported it
    thread_local std::mt19937 seeds(std::random_device{}());
    const auto seed = seeds();  // one shuffle of equal MX preferences per decision (determinism)
    auto self = shared_from_this();
    auto decide = [self, job, seed](dns::Resolver& view) {
      Decision d;
      // A gateway recipient (relay:) goes on unchanged: no DMARC verdict,
      // no transform (prepared()).
      const bool forwarded = job->request.target.kind == mail::Target::Kind::forward;
      if (self->transform && forwarded && job->request.origin == policy::Origin::received) {
        d.divert = self->transform->divert(job->config(), job->request, job->message->text, view);
        if (d.divert) return d;
        (void)self->transform->assess(job->config(), job->request, job->message->text, view);  // what apply() will read
      }
      // Issue 14: the first [[route]] that matches the address; a rule to a
      // host or an address replaces the MX lookup.
      if (const config::Route* rule = job->config().relay_route(job->request.target.value)) {
        d.rule = rule;
        d.route = smtp::client::resolve_next_hop(view, rule->via);
        return d;
      }
      std::mt19937 rng(seed);
      d.route = smtp::client::resolve_route(view, mail::domain_of(job->request.target.value), job->config().hostname,
                                            rng);
      return d;
    };
    auto decided = [self, job](Decision d, dns::AnswerSet answers) {
      self->prepared(job, std::move(d), std::make_shared<dns::AnswerSet>(std::move(answers)));
    };
    dns::resolve_then_with_answers<Decision>(resolver, std::move(decide), std::move(decided));
  }

  void prepared(const std::shared_ptr<Job>& job, Decision d, const std::shared_ptr<dns::AnswerSet>& answers) {
    if (job->finished) return;
    const auto& request = job->request;
    const std::string& target = request.target.value;
    if (d.divert) {
      log()->info("{}: to=<forward> status={} ({})", request.queue_id, d.divert->status, d.divert->detail);
      finish(job, *d.divert);
      return;
    }
    if (d.route.failure) {
      log()->info("{}: to=<{}> status={} ({})", request.queue_id, mail::redact(target, job->hidden()),
                  d.route.failure->status, mail::redact(d.route.failure->detail, job->hidden()));
      finish(job, to_result(*d.route.failure));
      return;
    }
    // [delivery] address_family (issue 17): only the addresses of that
    // family are tried (a host whose IPv6 address has no PTR).
    const config::AddressFamily family = job->config().delivery.address_family;
    if (family != config::AddressFamily::any) {
      const bool v6 = family == config::AddressFamily::ipv6;
      for (auto& host : d.route.hosts)
        std::erase_if(host.addresses,
                      [v6](const std::string& ip) { return (ip.find(':') != std::string::npos) != v6; });
      std::erase_if(d.route.hosts, [](const smtp::client::RouteHost& h) { return h.addresses.empty(); });
      if (d.route.hosts.empty()) {
        auto none = smtp::client::classify(smtp::client::Failure::unroutable,
                                           std::string("no ") + (v6 ? "IPv6" : "IPv4") + " address to deliver to for " +
                                               mail::domain_of(target) + " ([delivery] address_family)");
        log()->info("{}: to=<{}> status={} ({})", request.queue_id, mail::redact(target, job->hidden()), none.status,
                    none.detail);
        finish(job, to_result(none));
        return;
      }
    }
    auto p = std::make_shared<Prepared>();
    const bool relayed = request.target.kind == mail::Target::Kind::relay;
    // SRS: the forwarded copy's envelope sender (the null sender stays <>).
    // A hidden forward signs with its own derived key (srs/srs.hpp), so a
    // bounce to this address is recognised as one of a hidden forward and
    // kept in the owner's fallback mailbox (policy/address_book.hpp).
    // Submitted mail keeps its author's own address (ours to send from),
    // except on a hidden path: a bounce quoting the hidden address must
    // reach the owner, not the local author.
    const bool srs_sender = srs != nullptr && job->envelope.sender && !relayed &&
                            (request.origin == policy::Origin::received ||
                             (request.origin == policy::Origin::submitted && !request.srs_identity.empty()));
    p->domain = mail::domain_of(target);
    p->hosts = std::move(d.route.hosts);
    p->port = job->config().delivery.smtp_port;
    p->client = default_options;
    if (d.rule != nullptr) {
      p->port = d.rule->via.port;
      // A [[route.account]] logs in as its sender only for that sender's own
      // submitted mail (its login may send as that address: intake checked
      // MAIL FROM). Anything else, forwarded or relayed mail whose envelope
      // sender anyone on the internet chose, or submitted mail sent with an
      // SRS address of ours (a hidden path), takes the rule's own login.
      const bool own_mail = request.origin == policy::Origin::submitted && !srs_sender;
      p->client = route_options(*d.rule, own_mail ? job->envelope.sender_str() : std::string());
      // Concurrency and rate-limit state belong to the next hop, not to
      // the recipient domains behind it.
      p->domain = "route " + d.rule->via.str();
    }
    p->client = with_source(std::move(p->client), job->config(), request.target, d.rule);
    p->tx.sender = job->envelope.sender_str();
    if (srs_sender) p->tx.sender = srs->forward(*job->envelope.sender, srs_domain, request.srs_identity).str();
    p->tx.recipient = target;
    p->tx.smtputf8 = job->envelope.smtputf8;
    p->tx.log_id = request.queue_id;
    p->tx.hidden = job->hidden();
    // Opportunistic TLS (smtp/client/session.hpp): plaintext after a failed
    // handshake only when this target was attempted before.
    p->tx.plaintext_after_tls_failure = request.attempts > 0;

    // The one copy a forward makes: the added fields are inserted in place,
    // in room reserved for them. A large message's body is not copied: it
    // stays in its file, shared.
    mail::Message message;
    message.text.reserve(job->message->text.size() + kAddedRoom);
    message.text = job->message->text;
    // Our X-Spam-* fields are for the local copies only (issue 17).
    message.text = scan::strip_spam_fields(std::move(message.text));
    message.body = job->message->body;
    job->message.reset();
    if (!relayed)
      message.text =
          policy::add_forward_headers(std::move(message.text), request.origin, request.recipient, target,
                                      request.diverted);
    if (!transform || relayed) {
      p->tx.message = std::make_shared<const mail::Message>(std::move(message));
      start(job, std::move(p));
      return;
    }
    auto self = shared_from_this();
    auto apply = [self, job, p, answers, message = std::move(message)]() mutable {
      auto transformed = self->transform->apply(job->config(), job->request, std::move(message), *answers);
      if (!transformed.ok()) {
        log()->error("{}: cannot prepare the message for {}: {}", job->request.queue_id,
                     mail::redact(job->request.target.value, job->hidden()), transformed.error().message);
        self->finish(job, to_result(smtp::client::classify(Failure::local, "local error: cannot prepare the message"),
                                    AttemptResult::Cause::local));
        return false;
      }
      p->tx.message = std::make_shared<const mail::Message>(std::move(transformed).value());
      return true;
    };
    if (!transform->may_sign(job->config(), request)) {
      if (apply()) start(job, std::move(p));
      return;
    }
    asio::post(pool, [self, job, p, apply = std::move(apply)]() mutable {
      if (!apply()) return;
      asio::post(self->io, [self, job, p] { self->start(job, p); });
    });
  }

  // The SMTP conversation, on the io_context: a concurrency slot for the
  // destination, then the route's hosts in order.
  awaitable<AttemptResult> send(std::shared_ptr<Job> job, std::shared_ptr<Prepared> p) {
    auto deadline = std::chrono::system_clock::time_point::max();
    if (job->request.deadline != base::Clock::time_point{}) deadline = job->request.deadline;
    const Admission admission = co_await acquire(p->domain, deadline);
    if (!admission.admitted) {
      Outcome o;
      o.kind = Outcome::Kind::temporary;
      o.status = "4.4.5";  // RFC 3463: mail system congestion
      const Destination& d = destinations[p->domain];
      const std::string limiting =
          p->domain + " is rate-limiting us" + (d.reason.empty() ? "" : " (" + d.reason + ")");
      if (admission.paused_until == std::chrono::system_clock::time_point{}) {
        o.detail = d.pace.limited() ? limiting + ": the connections it allows stayed busy until the defer limit"
                                    : "every connection to " + p->domain + " stayed busy until the defer limit";
        co_return to_result(o, AttemptResult::Cause::local);
      }
      o.detail = limiting + ": paused until " + mail::rfc5322_date(admission.paused_until);
      auto result = to_result(o, AttemptResult::Cause::rate_limited);
      result.not_before = admission.paused_until;
      co_return result;
    }
    struct Release {
      Impl* impl;
      std::string domain;
      ~Release() { impl->release(domain); }
    } release_guard{this, p->domain};

    smtp::client::RouteContext context{p->port, &job->config().listen};
    Outcome outcome = co_await smtp::client::deliver_via_route(connections, p->hosts, context, *p->client, p->tx);
    learn(p->domain, outcome, job->request.queue_id, job->hidden());
    auto result = to_result(outcome);
    // A rate-limit reply paused the destination: this message's retry waits
    // for the pause too.
    if (outcome.rate_limited) result.not_before = destinations[p->domain].pace.next_start(std::chrono::system_clock::now());
    co_return result;
  }

  static std::shared_ptr<Job> make_job(const queue::DeliveryRequest& request,
                                       std::function<void(AttemptResult)> done) {
    auto job = std::make_shared<Job>();
    job->request = request;
    if (request.envelope) job->envelope = *request.envelope;
    job->request.envelope = &job->envelope;
    job->done = std::move(done);
    return job;
  }

  // In flight from here on: stop() reports it if the io_context never runs
  // it. False after stop(): the io_context is not running any more.
  bool track(const std::shared_ptr<Job>& job) {
    std::lock_guard lock(mu);
    if (stopped) return false;
    job->id = ++next_id;
    in_flight.emplace(job->id, job);
    return true;
  }

  // A prepared job's conversation, spawned on the io_context; the
  // completion handler is the one exception boundary.
  void start(const std::shared_ptr<Job>& job, std::shared_ptr<Prepared> prepared) {
    if (job->finished) return;
    auto self = shared_from_this();
    asio::co_spawn(io, send(job, std::move(prepared)), [self, job](const std::exception_ptr& e, AttemptResult outcome) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log()->error("{}: bug: forward delivery threw: {}", job->request.queue_id, ex.what());
        } catch (...) {
          log()->error("{}: bug: forward delivery threw", job->request.queue_id);
        }
        outcome = to_result(smtp::client::classify(Failure::local, "local error (internal)"),
                            AttemptResult::Cause::local);
      }
      self->finish(job, outcome);
    });
  }

  void finish(const std::shared_ptr<Job>& job, const AttemptResult& outcome) {
    if (job->finished.exchange(true)) return;  // exactly once
    {
      std::lock_guard lock(mu);
      in_flight.erase(job->id);
    }
    job->done(outcome);
  }

  const base::Live<policy::Rules>& rules;
  const unsigned concurrency_per_domain;  // [delivery], as started
  state::PaceOptions pace_options;        // [delivery] rate_limit_pause and the above, as started
  asio::io_context& io;
  asio::thread_pool& pool;          // signatures
  dns::AsyncResolver& resolver;     // io thread only
  std::shared_ptr<const ForwardTransform> transform;  // null: forwarded unchanged
  SmtpAgentOptions options;
  smtp::client::ClientOptions client;
  std::shared_ptr<const smtp::client::ClientOptions> default_options =
      std::make_shared<const smtp::client::ClientOptions>(client);
  // What the [[route]]s need from files, read by prepare_routes() (at
  // create() and before a reload installs new rules) and kept: passwords
  // by password_file, trust anchors of tls = "verify" by tls_ca_file.
  mutable std::mutex route_mu;
  std::map<std::filesystem::path, std::string> passwords;
  std::map<std::filesystem::path, std::shared_ptr<net::ssl::context>> verifying_contexts;

  // Reads what the routes of `config` need and is not read yet; a missing
  // or world-readable password file, or unusable trust anchors, is an Error.
  base::Status prepare_routes(const config::Config& config) {
    std::map<std::filesystem::path, std::string> new_passwords;
    std::map<std::filesystem::path, std::shared_ptr<net::ssl::context>> new_contexts;
    for (const auto& rule : config.routes) {
      if (rule.tls == config::RouteTls::verify) {
        std::lock_guard lock(route_mu);
        if (!verifying_contexts.contains(rule.tls_ca_file) && !new_contexts.contains(rule.tls_ca_file)) {
          auto ctx = smtp::client::verifying_context(rule.tls_ca_file);
          if (!ctx.ok())
            return base::make_error("route '" + rule.match + "' (" + rule.where + "): " + ctx.error().message);
          new_contexts.emplace(rule.tls_ca_file, std::move(ctx).value());
        }
      }
      for (const auto* a : rule.logins()) {
        // Read again on every preparation: a reload is how a changed
        // password reaches the server.
        if (new_passwords.contains(a->password_file)) continue;
        auto password = base::read_private_line(a->password_file);
        if (!password.ok()) return base::make_error("route password file " + password.error().message);
        new_passwords.emplace(a->password_file, std::move(password).value());
      }
    }
    std::lock_guard lock(route_mu);
    for (auto& [path, ctx] : new_contexts) verifying_contexts.emplace(path, std::move(ctx));
    for (auto& [path, password] : new_passwords) passwords.insert_or_assign(path, std::move(password));
    return {};
  }

  std::unique_ptr<base::SystemClock> clock;
  std::unique_ptr<srs::Rewriter> srs;
  std::string srs_domain;  // [srs] domain, as started (with the secrets)
  smtp::client::ConnectionPool connections;    // io thread only
  std::map<std::string, Destination> destinations;  // io thread only

  std::mutex mu;  // guards in_flight, next_id and stopped
  bool stopped = false;  // stop() ran: new jobs are answered at once
  uint64_t next_id = 0;
  std::map<uint64_t, std::shared_ptr<Job>> in_flight;
};

base::Result<std::unique_ptr<SmtpAgent>> SmtpAgent::create(const base::Live<policy::Rules>& rules,
                                                            asio::io_context& io,
                                                            asio::thread_pool& pool, dns::AsyncResolver& resolver,
                                                            std::shared_ptr<const ForwardTransform> transform,
                                                            SmtpAgentOptions options) {
  const auto started = rules.get();
  const config::Config& config = started->config();
  smtp::client::ClientOptions client =
      options.client ? *options.client : smtp::client::ClientOptions::from_config(config);
  auto impl = std::make_shared<Impl>(rules, io, pool, resolver, std::move(transform), std::move(options),
                                     std::move(client));
  if (!config.srs.domain.empty()) {
    auto secrets = srs::read_secrets(config.srs.secret_file);
    if (!secrets.ok()) return secrets.error();
    impl->clock = std::make_unique<base::SystemClock>();
    srs::Config sc;
    sc.secrets = std::move(secrets).value();
    impl->srs = std::make_unique<srs::Rewriter>(std::move(sc), *impl->clock);
    impl->srs_domain = config.srs.domain;
  }
  // [[route]] logins and trust anchors; a missing or world-readable
  // password file stops start-up.
  if (auto st = impl->prepare_routes(config); !st) return st.error();
  // Rate-limit state from before a restart: a destination still paused
  // stays paused until the saved end; one whose pause is over resumes with
  // the saved number of connections.
  if (!config.data_dir.empty()) {
    impl->store = std::make_unique<DestinationStore>(config.data_dir / "state" / "destinations", pool);
    const auto now = std::chrono::system_clock::now();
    for (const auto& e : impl->store->load(now)) {
      auto& d = impl->destinations[e.domain];
      d.pace = state::DestinationPace::restore(e, now, impl->pace_options);
      if (!d.pace.limited()) continue;
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(d.pace.next_start(now) - now);
      log()->warn("{} is still rate-limiting us (state from {}): {} s of pause left, then {} connection(s) at once",
                  e.domain, impl->store->file().string(), left.count(),
                  d.pace.allowed(d.pace.next_start(now), impl->pace_options));
    }
  }
  return std::unique_ptr<SmtpAgent>(new SmtpAgent(std::move(impl)));
}

SmtpAgent::SmtpAgent(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
SmtpAgent::~SmtpAgent() { stop(); }


void SmtpAgent::deliver(const queue::DeliveryRequest& request, std::function<void(AttemptResult)> done) {
  auto job = Impl::make_job(request, std::move(done));
  job->rules = impl_->rules.get();
  if (!impl_->track(job)) {
    // After stop(): its steps would be posted to an io_context that no
    // longer runs, and the queue would wait for its answer for ever.
    impl_->finish(job, interrupted_by_shutdown());
    return;
  }
  impl_->begin(job);
}

base::Status SmtpAgent::prepare(const config::Config& config) { return impl_->prepare_routes(config); }

std::vector<SmtpAgent::SlowDown> SmtpAgent::slowed_down() const {
  const auto now = std::chrono::system_clock::now();
  std::vector<SlowDown> out;
  for (const auto& [name, d] : impl_->destinations) {
    if (!d.pace.limited()) continue;
    const auto phase = d.pace.phase(now);
    if (phase == state::DestinationPace::Phase::normal) continue;
    out.push_back(SlowDown{name, phase == state::DestinationPace::Phase::paused, d.pace.paused_until(),
                           d.pace.allowed(now, impl_->pace_options)});
  }
  return out;
}

std::shared_ptr<const smtp::client::ClientOptions> SmtpAgent::options_for(const config::Route& rule,
                                                                          const std::string& sender) const {
  return impl_->route_options(rule, sender);
}

void SmtpAgent::stop() {
  std::vector<std::shared_ptr<Impl::Job>> jobs;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopped = true;
    for (auto& [id, job] : impl_->in_flight) jobs.push_back(job);
  }
  for (auto& job : jobs) impl_->finish(job, interrupted_by_shutdown());
}

}  // namespace hikyaku::delivery
