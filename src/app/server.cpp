#include "app/server.hpp"

#include <sodium.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "auth/dmarc/public_suffix.hpp"
#include "auth/inbound/inbound_sink.hpp"
#include "auth/inbound/srs_bounces.hpp"
#include "base/clock.hpp"
#include "base/file.hpp"
#include "base/log.hpp"
#include "delivery/forward_transform.hpp"
#include "delivery/maildir_agent.hpp"
#include "delivery/notice.hpp"
#include "delivery/smtp_agent.hpp"
#include "dns/caching_resolver.hpp"
#include "dns/unbound_resolver.hpp"
#include "mailbox/maildir.hpp"
#include "net/listener.hpp"
#include "policy/fallback.hpp"
#include "policy/loop.hpp"
#include "policy/resolver.hpp"
#include "imap/session.hpp"
#include "pop3/session.hpp"
#include "queue/scheduler.hpp"
#include "queue/spool.hpp"
#include "sasl/credential_store.hpp"
#include "smtp/server/message_sink.hpp"
#include "smtp/server/session.hpp"
#include "tls/context.hpp"

namespace hikyaku::app {
namespace {

namespace asio = boost::asio;

// The queue's single entry point as the SMTP server sees it: resolve each
// recipient's plan, store durably, and start delivery at once. SRS bounce
// recipients (issue 4) are planned by `srs` (reversal or fallback mailbox).
// Spool rule 1 in two steps with the forwards started in between (spool.hpp,
// scheduler.hpp): admit() stages the message and starts its forwards, which
// reach the far side while the commit syncs the disk; the 250 still waits
// for the commit.
class SpoolSink final : public smtp::server::MessageSink {
 public:
  SpoolSink(const policy::Resolver& policy, queue::Spool& spool, queue::Scheduler& scheduler,
            const auth::inbound::SrsBounces* srs)
      : policy_(policy), spool_(spool), scheduler_(scheduler), srs_(srs) {}

  base::Result<smtp::server::Admission> admit(const mail::Envelope& envelope, std::string message) override {
    return stage_and_start(envelope, std::move(message), queue::Scheduler::Caller::worker);
  }

  // Planning and staging never block (the plan is configuration, the stage
  // is memory): on the event loop the forwards start through deliver_now().
  std::optional<base::Result<smtp::server::Admission>> admit_now(const mail::Envelope& envelope,
                                                                 std::string& message) override {
    return stage_and_start(envelope, std::move(message), queue::Scheduler::Caller::event_loop);
  }

  base::Result<std::string> store(const mail::Envelope& envelope, std::string message) override {
    auto stored = accept(envelope, std::move(message));
    if (!stored) return stored.error();
    return std::move(stored->queue_id);
  }

 private:
  base::Result<smtp::server::Admission> stage_and_start(const mail::Envelope& envelope, std::string message,
                                                        queue::Scheduler::Caller caller) {
    queue::Plans plans;
    for (const auto& rcpt : envelope.recipients) {
      std::optional<std::vector<config::Target>> srs_plan;
      if (srs_ != nullptr) srs_plan = srs_->plan(rcpt);
      plans.push_back({rcpt, srs_plan ? *srs_plan : policy_.plan(rcpt).targets});
    }
    auto bytes = std::make_shared<const std::string>(std::move(message));
    auto staged = spool_.stage(envelope, plans, *bytes);
    if (!staged.ok()) return staged.error();
    scheduler_.submit_staged(staged->message, bytes, caller);
    return smtp::server::Admission{
        std::nullopt, std::make_unique<Commit>(spool_, scheduler_, std::move(staged).value(), std::move(bytes))};
  }

  // The second step: the spool file written and synced, then the scheduler
  // may act on what the forwards reported. Dropped uncommitted (the session
  // ended first), the message is abandoned: its forwards may have gone out,
  // but the client never saw a 250 and will send it again.
  class Commit final : public smtp::server::PendingMessage {
   public:
    Commit(queue::Spool& spool, queue::Scheduler& scheduler, queue::StagedMessage staged,
           std::shared_ptr<const std::string> bytes)
        : spool_(spool), scheduler_(scheduler), staged_(std::move(staged)), bytes_(std::move(bytes)) {}
    Commit(const Commit&) = delete;
    Commit& operator=(const Commit&) = delete;
    ~Commit() override {
      if (!settled_) scheduler_.abandoned(staged_.message.id);
    }

    base::Result<std::string> commit() override {
      HIKYAKU_CHECK(!settled_);
      settled_ = true;
      const std::string& id = staged_.message.id;
      if (auto st = spool_.commit(staged_, *bytes_); !st) {
        scheduler_.abandoned(id);
        return st.error();
      }
      scheduler_.committed(id);
      return id;
    }

   private:
    queue::Spool& spool_;
    queue::Scheduler& scheduler_;
    queue::StagedMessage staged_;
    std::shared_ptr<const std::string> bytes_;
    bool settled_ = false;
  };

  const policy::Resolver& policy_;
  queue::Spool& spool_;
  queue::Scheduler& scheduler_;
  const auth::inbound::SrsBounces* srs_;
};

std::string random_password() {
  static constexpr char kAlphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::string out;
  for (int i = 0; i < 16; ++i) out += kAlphabet[randombytes_uniform(sizeof kAlphabet - 1)];
  return out;
}

}  // namespace

int serve(config::Config config, const ServeOptions& options) {
  base::init_logging(config.log_level);
  auto log = base::logger("hikyaku");
  if (sodium_init() < 0) {
    std::cerr << "hikyaku: libsodium failed to initialise\n";
    return 1;
  }

  // Data directories: spool, mailboxes, TLS material.
  for (const auto& dir : {config.data_dir, config.spool_dir(), config.data_dir / "mailboxes"}) {
    if (auto st = base::ensure_directory(dir); !st) {
      std::cerr << "hikyaku: " << st.error().message << "\n";
      return 1;
    }
  }
  for (const auto& m : config.mailboxes) {
    if (auto st = mailbox::Maildir(config.mailbox_dir(m.name)).create(); !st) {
      std::cerr << "hikyaku: " << st.error().message << "\n";
      return 1;
    }
  }

  // TLS: the configured certificate, or a self-signed one when asked.
  if (!config.tls.configured() && config.tls.self_signed) {
    config.tls.cert = config.data_dir / "tls" / "cert.pem";
    config.tls.key = config.data_dir / "tls" / "key.pem";
    if (auto st = tls::ensure_self_signed(config.tls.cert, config.tls.key, config.hostname); !st) {
      std::cerr << "hikyaku: " << st.error().message << "\n";
      return 1;
    }
  }
  std::shared_ptr<asio::ssl::context> tls_context;
  if (config.tls.configured()) {
    auto ctx = tls::make_server_context(config.tls.cert, config.tls.key);
    if (!ctx.ok()) {
      std::cerr << "hikyaku: " << ctx.error().message << "\n";
      return 1;
    }
    tls_context = *ctx;
  }

  sasl::CredentialStore credentials(config.users_file());
  if (options.demo) {
    // README's first command: a demo mailbox with a fresh password each start.
    std::string password = random_password();
    if (auto st = credentials.set_password("demo", password); !st) {
      std::cerr << "hikyaku: " << st.error().message << "\n";
      return 1;
    }
    std::cout << "demo mailbox: user \"demo\", password \"" << password << "\" (POP3 127.0.0.1:1110, "
              << "POP3S 127.0.0.1:1995, IMAP 127.0.0.1:1143, IMAPS 127.0.0.1:1993; "
              << "mail to demo@example.test via SMTP 127.0.0.1:2525)" << std::endl;
  }

  // Queue and delivery.
  base::SystemClock clock;
  policy::Resolver policy(config);
  queue::Spool spool(config, clock);
  if (auto st = spool.open(); !st) {
    std::cerr << "hikyaku: " << st.error().message << "\n";
    return 1;
  }
  queue::Scheduler scheduler(spool, config, clock);
  delivery::MaildirAgent maildir_agent(config);
  scheduler.register_agent(config::Target::Kind::mailbox, maildir_agent);
  // Issue 3: fallback chains, notices and DSNs (queued as new messages).
  delivery::Reporter reporter(config, spool, [&scheduler](const std::string& id) { scheduler.submit(id); });
  policy::ForwardFallback fallback(config, &reporter);
  scheduler.set_fallback_policy(fallback);
  // Issue 4: SRS bounce addresses (hidden forwards' keys derived per forward)
  // and the Public Suffix List when [dmarc] method = "psl".
  std::unique_ptr<auth::inbound::SrsBounces> srs_bounces;
  if (!config.srs.domain.empty()) {
    auto secrets = delivery::read_srs_secrets(config.srs.secret_file);
    if (!secrets.ok()) {
      std::cerr << "hikyaku: " << secrets.error().message << "\n";
      return 1;
    }
    srs_bounces = std::make_unique<auth::inbound::SrsBounces>(config, std::move(secrets).value(), clock);
  }
  std::optional<auth::dmarc::PublicSuffixList> psl;
  if (config.dmarc.method == "psl") {
    auto loaded = auth::dmarc::PublicSuffixList::load(config.dmarc.public_suffix_list.string());
    if (!loaded.ok()) {
      std::cerr << "hikyaku: [dmarc] public_suffix_list: " << loaded.error().message << "\n";
      return 1;
    }
    psl.emplace(std::move(loaded).value());
  }
  SpoolSink spool_sink(policy, spool, scheduler, srs_bounces.get());

  // Declared before the io_context so that it outlives it: sessions still
  // open at shutdown (an IMAP client in IDLE) are destroyed with the
  // io_context, and their Lease destructors update the limiter.
  auto limiter = std::make_shared<net::ConnectionLimiter>(config.limits.connections, config.limits.connections_per_ip);
  asio::io_context io(1);
  asio::thread_pool workers(std::max(4u, std::thread::hardware_concurrency() * 2));
  // Forward targets: the SMTP client; message preparation and MX lookups
  // run on the scheduler's workers, the conversations on `io`.
  auto resolver = dns::UnboundResolver::create(config.dns.servers);
  if (!resolver.ok()) {
    std::cerr << "hikyaku: " << resolver.error().message << "\n";
    return 1;
  }
  // Every lookup goes through one answer cache (see caching_resolver.hpp).
  dns::CachingResolver dns_cache(**resolver);
  auto smtp_agent = delivery::SmtpAgent::create(config, io, workers, dns_cache);
  if (!smtp_agent.ok()) {
    std::cerr << "hikyaku: " << smtp_agent.error().message << "\n";
    return 1;
  }
  // Forwarded copies carry X-Hikyaku-Diverted (diverted slots) and
  // X-Hikyaku-Forwarded-For (loop check); the loop guard refuses (5.4.6) a
  // forward that would loop, so the fallback policy diverts it at once.
  // Issue 4: then the ARC set, DMARC-aware From rewriting and DKIM
  // (delivery/forward_transform.hpp); the divert guard answers 5.7.26 for
  // forwards with dmarc = "divert" before anything is sent.
  auto forward_transform = delivery::ForwardTransform::create(config, dns_cache, psl ? &*psl : nullptr);
  if (!forward_transform.ok()) {
    std::cerr << "hikyaku: " << forward_transform.error().message << "\n";
    return 1;
  }
  delivery::MessageTransform transform;
  transform.apply = [ft = *forward_transform](const queue::DeliveryRequest& request, std::string message,
                                              dns::Resolver& dns) -> base::Result<std::string> {
    return ft->apply(request, policy::add_forward_headers(request, std::move(message)), dns);
  };
  transform.cheap = [ft = *forward_transform](const queue::DeliveryRequest& request) { return !ft->may_sign(request); };
  (*smtp_agent)->set_transform(std::move(transform));
  policy::LoopGuard loop_guard(config, **smtp_agent);
  delivery::DmarcDivertGuard divert_guard(**forward_transform, loop_guard);
  scheduler.register_agent(config::Target::Kind::forward, divert_guard);
  // Issue 4: inbound SPF/DKIM/ARC/DMARC and Authentication-Results at the end
  // of DATA (on the event loop when every answer is cached, else on the
  // workers), DMARC reject per domain, SRS bounces at RCPT.
  auth::inbound::InboundSink sink(config, dns_cache, spool_sink, srs_bounces.get(), psl ? &*psl : nullptr);

  smtp::server::ServerContext smtp_ctx{config, policy, sink, tls_context, workers};
  pop3::Pop3Context pop3_ctx{config, credentials, tls_context, workers};
  imap::ImapContext imap_ctx{config, credentials, tls_context, workers};

  // Two-stage shutdown (STYLE R9): stop accepting, then stop the loop. The
  // handler is installed before the first listener binds: a SIGTERM sent as
  // soon as a port accepts (a supervisor, the tests) waits in the signal set
  // until io.run() instead of killing the process with the default action.
  std::vector<std::shared_ptr<net::tcp::acceptor>> acceptors;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log->info("signal {}: shutting down", signo);
    for (auto& a : acceptors) {
      boost::system::error_code ignored;
      a->close(ignored);
    }
    io.stop();
  });

  // Bind everything before serving so a port conflict fails start-up loudly.
  bool bind_failed = false;
  auto listen = [&](const std::vector<config::Endpoint>& endpoints, const std::string& name,
                    const net::SessionHandler& handler) {
    for (const auto& ep : endpoints) {
      auto acceptor = net::bind(io, ep.host, ep.port);
      if (!acceptor.ok()) {
        std::cerr << "hikyaku: " << acceptor.error().message << "\n";
        bind_failed = true;
        continue;
      }
      acceptors.push_back(*acceptor);
      net::start_accepting(*acceptor, name, limiter, handler);
      log->info("listening: {} on {}", name, ep.str());
    }
  };
  using Lease = std::unique_ptr<net::ConnectionLimiter::Lease>;
  listen(config.listen.smtp, "smtp", [&](net::tcp::socket s, Lease l) {
    return smtp::server::run_session(std::move(s), std::move(l), smtp_ctx, smtp::server::Role::mx);
  });
  listen(config.listen.submission, "submission", [&](net::tcp::socket s, Lease l) {
    return smtp::server::run_session(std::move(s), std::move(l), smtp_ctx, smtp::server::Role::submission);
  });
  listen(config.listen.pop3, "pop3", [&](net::tcp::socket s, Lease l) {
    return pop3::run_session(std::move(s), std::move(l), pop3_ctx, false);
  });
  listen(config.listen.imap, "imap", [&](net::tcp::socket s, Lease l) {
    return imap::run_session(std::move(s), std::move(l), imap_ctx, false);
  });
  if (tls_context) {
    listen(config.listen.submissions, "submissions", [&](net::tcp::socket s, Lease l) {
      return smtp::server::run_session(std::move(s), std::move(l), smtp_ctx, smtp::server::Role::submissions);
    });
    listen(config.listen.pop3s, "pop3s", [&](net::tcp::socket s, Lease l) {
      return pop3::run_session(std::move(s), std::move(l), pop3_ctx, true);
    });
    listen(config.listen.imaps, "imaps", [&](net::tcp::socket s, Lease l) {
      return imap::run_session(std::move(s), std::move(l), imap_ctx, true);
    });
  } else if (!config.listen.submissions.empty() || !config.listen.pop3s.empty() || !config.listen.imaps.empty()) {
    std::cerr << "hikyaku: implicit-TLS listeners need [tls] cert and key\n";
    bind_failed = true;
  }
  if (bind_failed) return 1;

  // Resume every unfinished delivery, then start delivering.
  if (auto st = scheduler.start(); !st) {
    std::cerr << "hikyaku: " << st.error().message << "\n";
    return 1;
  }

  (void)std::signal(SIGPIPE, SIG_IGN);  // SIG_ERR only for an invalid signal number
  log->info("hikyaku ready ({} , data in {})", config.source.string(), config.data_dir.string());
  io.run();
  (*smtp_agent)->stop();  // in-flight forwards will not resume: report them temporary
  workers.join();
  scheduler.stop();
  log->info("stopped");
  return 0;
}

}  // namespace hikyaku::app
