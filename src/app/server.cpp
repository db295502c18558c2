#include "app/server.hpp"

#include <sodium.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <thread>

#include "auth/dmarc/public_suffix.hpp"
#include "base/clock.hpp"
#include "base/executor.hpp"
#include "base/file.hpp"
#include "base/log.hpp"
#include "delivery/forward_transform.hpp"
#include "delivery/maildir_agent.hpp"
#include "delivery/smtp_agent.hpp"
#include "dns/answer_cache.hpp"
#include "dns/asio/unbound_watch.hpp"
#include "dns/unbound_resolver.hpp"
#include "imap/session.hpp"
#include "login/mailbox_login.hpp"
#include "intake/intake.hpp"
#include "mailbox/maildir.hpp"
#include "net/listener.hpp"
#include "policy/address_book.hpp"
#include "policy/delivery_policy.hpp"
#include "policy/reports.hpp"
#include "pop3/session.hpp"
#include "queue/scheduler.hpp"
#include "queue/spool.hpp"
#include "sasl/credential_store.hpp"
#include "smtp/server/session.hpp"
#include "srs/srs.hpp"
#include "tls/context.hpp"
#include "tls/server_certificates.hpp"

namespace hikyaku::app {
namespace {

namespace asio = boost::asio;

// base::Executor over an Asio executor: how components below the session
// layer (intake) are given the loop and the blocking pool.
template <typename AsioExecutor>
class PostTo final : public base::Executor {
 public:
  explicit PostTo(AsioExecutor ex) : ex_(std::move(ex)) {}
  void post(std::function<void()> work) override { asio::post(ex_, std::move(work)); }

 private:
  AsioExecutor ex_;
};

std::string random_password() {
  static constexpr char kAlphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::string out;
  for (int i = 0; i < 16; ++i) out += kAlphabet[randombytes_uniform(sizeof kAlphabet - 1)];
  return out;
}

}  // namespace

int serve(config::Config config, const ServeOptions& options) {
  base::init_logging(config.log_level, config.log_format);
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
  // The default certificate first, then [[tls.certificate]] (chosen by SNI).
  std::shared_ptr<tls::ServerCertificates> certificates;
  std::shared_ptr<asio::ssl::context> tls_context;
  if (config.tls.configured()) {
    std::vector<tls::CertificateFiles> files{{config.tls.cert, config.tls.key, config.tls.cert_where,
                                              config.tls.key_where}};
    for (const auto& c : config.tls.certificates) files.push_back({c.cert, c.key, c.cert_where, c.key_where});
    auto loaded = tls::ServerCertificates::create(std::move(files));
    if (!loaded.ok()) {
      std::cerr << "hikyaku: " << loaded.error().message << "\n";
      return 1;
    }
    certificates = *loaded;
    tls_context = certificates->context();
    for (const auto& info : certificates->loaded()) log->info("TLS certificate {}", info.str());
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

  // The delivery contract and the queue that applies it.
  base::SystemClock clock;
  std::vector<std::string> srs_secrets;
  if (!config.srs.domain.empty()) {
    auto secrets = srs::read_secrets(config.srs.secret_file);
    if (!secrets.ok()) {
      std::cerr << "hikyaku: " << secrets.error().message << "\n";
      return 1;
    }
    srs_secrets = std::move(secrets).value();
  }
  // SRS bounce addresses: hidden forwards' keys derived per forward.
  policy::AddressBook addresses(config, srs_secrets, clock);
  policy::DeliveryPolicy delivery_policy(config);
  policy::ReportWriter reports(config);
  queue::Spool spool(config.spool_dir(), clock);
  if (auto st = spool.open(); !st) {
    std::cerr << "hikyaku: " << st.error().message << "\n";
    return 1;
  }
  queue::Scheduler scheduler(spool, delivery_policy, reports, clock);
  delivery::MaildirAgent maildir_agent(delivery::MaildirAgent::Settings::from(config));
  scheduler.register_agent(mail::Target::Kind::mailbox, maildir_agent);
  // The Public Suffix List when [dmarc] method = "psl".
  std::optional<auth::dmarc::PublicSuffixList> psl;
  if (config.dmarc.method == "psl") {
    auto loaded = auth::dmarc::PublicSuffixList::load(config.dmarc.public_suffix_list.string());
    if (!loaded.ok()) {
      std::cerr << "hikyaku: [dmarc] public_suffix_list: " << loaded.error().message << "\n";
      return 1;
    }
    psl.emplace(std::move(loaded).value());
  }

  // One connection pool per protocol, each of [limits] connections and
  // connections_per_ip: SMTP (25), submission (587 and 465), POP3 (110 and
  // 995), IMAP (143 and 993). A shared pool let idle SMTP clients from a few
  // dozen addresses shut out every mail reader (issue 13). Declared before
  // the io_context so that they outlive it: sessions still open at shutdown
  // (an IMAP client in IDLE) are destroyed with the io_context, and their
  // Lease destructors update the limiter.
  auto new_limiter = [&config] {
    return std::make_shared<net::ConnectionLimiter>(config.limits.connections, config.limits.connections_per_ip);
  };
  const auto smtp_limiter = new_limiter();
  const auto submission_limiter = new_limiter();
  const auto pop3_limiter = new_limiter();
  const auto imap_limiter = new_limiter();
  asio::io_context io(1);
  // The blocking pool: fsync (spool commits), argon2id, DKIM/ARC signatures.
  asio::thread_pool blocking(std::max(4u, std::thread::hardware_concurrency() * 2));
  // Password checks for POP3, IMAP and submission: their own small pool at
  // a lower priority, a bounded queue, the lockout per source address.
  login::MailboxLogins logins(config, credentials, login::MailboxLogins::Settings::from(config));
  // DNS never blocks: libunbound's asynchronous interface, its result fd
  // watched by the event loop, one answer cache in front (RFC 2308), and the
  // verifiers decide as the answers arrive (dns/resolution.hpp).
  auto resolver = dns::UnboundResolver::create(config.dns.servers);
  if (!resolver.ok()) {
    std::cerr << "hikyaku: " << resolver.error().message << "\n";
    return 1;
  }
  dns::AnswerCache dns_cache(**resolver);
  dns::asio::UnboundWatch dns_watch(io, **resolver);
  // Forward targets: loop check, DMARC divert, ARC/DMARC/DKIM transform,
  // SRS, route, then the SMTP conversation on `io`.
  // A signing key the configuration names must be there: forwarding
  // unsigned would only make Gmail refuse more (check-config says the same).
  if (auto missing = config::unreadable_files(config, "domain.dkim_key"); !missing.empty()) {
    for (const auto& e : missing)
      std::cerr << "hikyaku: " << e.str() << " (hikyaku dkim keygen DOMAIN --config " << config.source.string()
                << " writes it; or set dkim = false in that [[domain]])\n";
    return 1;
  }
  auto forward_transform = delivery::ForwardTransform::create(config, psl ? &*psl : nullptr);
  if (!forward_transform.ok()) {
    std::cerr << "hikyaku: " << forward_transform.error().message << "\n";
    return 1;
  }
  auto smtp_agent = delivery::SmtpAgent::create(config, io, blocking, dns_cache, *forward_transform);
  if (!smtp_agent.ok()) {
    std::cerr << "hikyaku: " << smtp_agent.error().message << "\n";
    return 1;
  }
  scheduler.register_agent(mail::Target::Kind::forward, **smtp_agent);
  // Intake: inbound SPF/DKIM/ARC/DMARC and Authentication-Results, DMARC
  // reject per domain, plans, stage and commit.
  PostTo on_loop(io.get_executor());
  PostTo on_pool(blocking.get_executor());
  intake::Intake intake(intake::Settings::from(config), addresses, dns_cache, psl ? &*psl : nullptr, spool, scheduler,
                        on_loop, on_pool);

  smtp::server::ServerContext smtp_ctx{smtp::server::Settings::from(config), intake, tls_context, blocking, &logins};
  pop3::Pop3Context pop3_ctx{config, logins, tls_context, blocking};
  imap::ImapContext imap_ctx{config, logins, tls_context, blocking};

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
  // SIGHUP (systemd's reload, certbot's deploy hook, logrotate): re-read
  // the TLS certificate and key files, not the configuration file (its
  // [tls] list stays as started). New handshakes get the new certificates;
  // connections in progress keep theirs; a file that fails keeps every old
  // certificate. The signal set makes the handler async-signal-safe: it
  // runs on the loop, not in the signal. Re-armed after each signal.
  asio::signal_set hangups(io, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hangup = [&](const boost::system::error_code& ec,
                                                                             int /*signo*/) {
    if (ec) return;
    if (!certificates) {
      log->info("SIGHUP: no TLS certificates to reload (the configuration file is not re-read)");
    } else if (auto reloaded = certificates->reload(); !reloaded.ok()) {
      log->error("SIGHUP: TLS certificates not reloaded, the old ones stay in use: {}", reloaded.error().message);
    } else {
      for (const auto& info : *reloaded) log->info("SIGHUP: TLS certificate reloaded: {}", info.str());
    }
    hangups.async_wait(on_hangup);
  };
  hangups.async_wait(on_hangup);

  // Bind everything before serving so a port conflict fails start-up loudly.
  bool bind_failed = false;
  auto listen = [&](const std::vector<config::Endpoint>& endpoints, const std::string& name,
                    const std::shared_ptr<net::ConnectionLimiter>& limiter, const net::SessionHandler& handler) {
    for (const auto& ep : endpoints) {
      auto acceptor = net::bind(io, ep.host, ep.port);
      if (!acceptor.ok()) {
        std::cerr << "hikyaku: " << acceptor.error().message << "\n";
        bind_failed = true;
        continue;
      }
      acceptors.push_back(*acceptor);
      net::start_accepting(*acceptor, name, config.access.of(name), limiter, handler);
      log->info("listening: {} on {}", name, ep.str());
    }
  };
  using Admission = net::Admission;
  listen(config.listen.smtp, "smtp", smtp_limiter, [&](net::tcp::socket s, Admission a) {
    return smtp::server::run_session(std::move(s), std::move(a), smtp_ctx, smtp::server::Role::mx);
  });
  listen(config.listen.submission, "submission", submission_limiter, [&](net::tcp::socket s, Admission a) {
    return smtp::server::run_session(std::move(s), std::move(a), smtp_ctx, smtp::server::Role::submission);
  });
  listen(config.listen.pop3, "pop3", pop3_limiter, [&](net::tcp::socket s, Admission a) {
    return pop3::run_session(std::move(s), std::move(a), pop3_ctx, false);
  });
  listen(config.listen.imap, "imap", imap_limiter, [&](net::tcp::socket s, Admission a) {
    return imap::run_session(std::move(s), std::move(a), imap_ctx, false);
  });
  if (tls_context) {
    listen(config.listen.submissions, "submissions", submission_limiter, [&](net::tcp::socket s, Admission a) {
      return smtp::server::run_session(std::move(s), std::move(a), smtp_ctx, smtp::server::Role::submissions);
    });
    listen(config.listen.pop3s, "pop3s", pop3_limiter, [&](net::tcp::socket s, Admission a) {
      return pop3::run_session(std::move(s), std::move(a), pop3_ctx, true);
    });
    listen(config.listen.imaps, "imaps", imap_limiter, [&](net::tcp::socket s, Admission a) {
      return imap::run_session(std::move(s), std::move(a), imap_ctx, true);
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
  dns_watch.stop();
  (*smtp_agent)->stop();  // in-flight forwards will not resume: report them temporary
  blocking.join();
  logins.stop();
  scheduler.stop();
  log->info("stopped");
  return 0;
}

}  // namespace hikyaku::app
