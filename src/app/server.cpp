#include "app/server.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sodium.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <thread>
#include <vector>

#include "admin/control.hpp"
#include "admin/reload_command.hpp"
#include "admin/service_user.hpp"
#include "app/control_listener.hpp"
#include "auth/dmarc/public_suffix.hpp"
#include "base/clock.hpp"
#include "base/executor.hpp"
#include "base/file.hpp"
#include "base/live.hpp"
#include "base/log.hpp"
#include "base/pid_lock.hpp"
#include "base/privileges.hpp"
#include "delivery/forward_transform.hpp"
#include "delivery/callout_verifier.hpp"
#include "delivery/maildir_agent.hpp"
#include "delivery/smtp_agent.hpp"
#include "config/known_forwards.hpp"
#include "config/reload.hpp"
#include "dns/answer_cache.hpp"
#include "dns/asio/unbound_watch.hpp"
#include "dns/unbound_resolver.hpp"
#include "http/session.hpp"
#include "imap/session.hpp"
#include "login/mailbox_login.hpp"
#include "intake/intake.hpp"
#include "mailbox/maildir.hpp"
#include "history/history.hpp"
#include "metrics/metrics.hpp"
#include "net/listener.hpp"
#include "policy/address_book.hpp"
#include "policy/delivery_policy.hpp"
#include "policy/reports.hpp"
#include "policy/rules.hpp"
#include "pop3/session.hpp"
#include "queue/scheduler.hpp"
#include "queue/spool.hpp"
#include "sasl/credential_store.hpp"
#include "scan/client.hpp"
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

// The event loop, with the one step Asio leaves to a derived class
// (execution_context::shutdown): destroying the handlers a stopped loop
// still holds — sessions suspended in a read, a session waiting for its
// message's commit — while everything they refer to still exists. The
// io_context's destructor would do it too, but only after the components
// declared after it (the scheduler, the intake) are gone.
class EventLoop final : public asio::io_context {
 public:
  using asio::io_context::io_context;
  void discard_pending() { shutdown(); }
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
  for (const auto& w : config.warnings) log->warn("{}: {}", w.where, w.message);
  if (sodium_init() < 0) {
    std::cerr << "hikyaku: libsodium failed to initialise\n";
    return 1;
  }

  // Start-up runs in two parts (issue 13 item 5). As root (when started as
  // root with a configured `user`): find the user, give it data_dir, read
  // what only root may read (TLS key, SRS secrets, DKIM keys) and bind the
  // listeners. Then drop to the user for good, and only then touch
  // data_dir, so that every file the server creates is the user's.
  auto service_user = admin::service_user(config);
  if (!service_user) {
    std::cerr << "hikyaku: " << service_user.error().message << "\n";
    return 1;
  }
  if (service_user->drop) {
    if (auto st = base::prepare_data_dir(config.data_dir, *service_user->account); !st) {
      std::cerr << "hikyaku: " << st.error().message << "\n";
      return 1;
    }
  }

  // Secrets. The default certificate first, then [[tls.certificate]]
  // (chosen by SNI); a self-signed default is made under data_dir after the
  // drop, and loaded then.
  std::shared_ptr<tls::ServerCertificates> certificates;
  std::shared_ptr<asio::ssl::context> tls_context;
  auto load_certificates = [&]() -> bool {
    std::vector<tls::CertificateFiles> files{{config.tls.cert, config.tls.key, config.tls.cert_where,
                                              config.tls.key_where}};
    for (const auto& c : config.tls.certificates) files.push_back({c.cert, c.key, c.cert_where, c.key_where});
    auto loaded = tls::ServerCertificates::create(std::move(files));
    if (!loaded.ok()) {
      std::cerr << "hikyaku: " << loaded.error().message << "\n";
      return false;
    }
    certificates = *loaded;
    tls_context = certificates->context();
    for (const auto& info : certificates->loaded()) log->info("TLS certificate {}", info.str());
    return true;
  };
  if (config.tls.configured() && !load_certificates()) return 1;
  std::vector<std::string> srs_secrets;
  if (!config.srs.domain.empty()) {
    auto secrets = srs::read_secrets(config.srs.secret_file);
    if (!secrets.ok()) {
      std::cerr << "hikyaku: " << secrets.error().message << "\n";
      return 1;
    }
    srs_secrets = std::move(secrets).value();
    if (auto warning = srs::secret_file_warning(config.srs.secret_file)) log->warn("{}", *warning);
  }
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
  // Forward targets: loop check, DMARC divert, ARC/DMARC/DKIM transform
  // (it holds the signing keys), SRS, route, then the SMTP conversation.
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
  const auto http_limiter = new_limiter();
  EventLoop io(1);

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
  // SIGHUP: `hikyaku reload` (below, once every component exists). The
  // signal set is made here so that a SIGHUP during start-up waits for it
  // instead of killing the process.
  asio::signal_set hangups(io, SIGHUP);

  // Bind everything (ports below 1024 need root) before serving so a port
  // conflict fails start-up loudly; listening and accepting start once the
  // components exist, after the drop.
  struct Bound {
    std::string name;
    std::shared_ptr<net::tcp::acceptor> acceptor;
    std::string endpoint;
  };
  std::vector<Bound> bound;
  bool bind_failed = false;
  auto bind = [&](const std::vector<config::Endpoint>& endpoints, const std::string& name) {
    for (const auto& ep : endpoints) {
      auto acceptor = net::bind(io, ep.host, ep.port, /*listen_now=*/false);
      if (!acceptor.ok()) {
        std::cerr << "hikyaku: " << acceptor.error().message << "\n";
        bind_failed = true;
        continue;
      }
      acceptors.push_back(*acceptor);
      bound.push_back({name, *acceptor, ep.str()});
    }
  };
  bind(config.listen.smtp, "smtp");
  bind(config.listen.submission, "submission");
  bind(config.listen.pop3, "pop3");
  bind(config.listen.imap, "imap");
  bind(config.listen.http, "http");  // loopback only (config.cpp refuses others)
  if (config.tls.configured() || config.tls.self_signed) {
    bind(config.listen.submissions, "submissions");
    bind(config.listen.pop3s, "pop3s");
    bind(config.listen.imaps, "imaps");
  } else if (!config.listen.submissions.empty() || !config.listen.pop3s.empty() || !config.listen.imaps.empty()) {
    std::cerr << "hikyaku: implicit-TLS listeners need [tls] cert and key\n";
    bind_failed = true;
  }
  if (bind_failed) return 1;

  // Drop root for good: groups, gid, uid; regaining root must fail. Any
  // thread already running changes with the process (glibc's setxid).
  if (service_user->drop) {
    if (auto st = base::drop_privileges(*service_user->account); !st) {
      std::cerr << "hikyaku: " << st.error().message << "\n";
      return 1;
    }
    log->info("running as user {} (uid {}, gid {})", service_user->account->name, service_user->account->uid,
              service_user->account->gid);
  }
  // What the server writes in data_dir must be the user's (a root-owned
  // DATA_DIR/users, say, from an older `user passwd` run as root).
  if (service_user->account) {
    std::vector<std::filesystem::path> written{config.data_dir, config.spool_dir(), config.mailboxes_dir(),
                                               config.users_file(), config.data_dir / "state"};
    if (!config.tls.configured() && config.tls.self_signed) written.push_back(config.data_dir / "tls");
    for (const auto& path : written) {
      if (auto st = base::check_owner(path, *service_user->account, config.data_dir); !st) {
        std::cerr << "hikyaku: " << st.error().message << "\n";
        return 1;
      }
    }
  }

  // One server per data directory (base/pid_lock.hpp): taken before
  // anything in it is read or written. `hikyaku reload` and `queue flush`
  // find the server by it; it goes with the process, however it ends.
  if (auto st = base::ensure_directory(config.data_dir); !st) {
    std::cerr << "hikyaku: " << st.error().message << "\n";
    return 1;
  }
  auto pid_lock = base::PidLock::acquire(config.data_dir / "hikyaku.pid");
  if (!pid_lock) {
    std::cerr << "hikyaku: " << pid_lock.error().message << "\n";
    return 1;
  }

  // Data directories: spool, mailboxes, TLS material.
  for (const auto& dir : {config.spool_dir(), config.data_dir / "mailboxes", config.data_dir / "state"}) {
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

  // TLS: a self-signed certificate when asked and none is configured.
  if (!config.tls.configured() && config.tls.self_signed) {
    config.tls.cert = config.data_dir / "tls" / "cert.pem";
    config.tls.key = config.data_dir / "tls" / "key.pem";
    if (auto st = tls::ensure_self_signed(config.tls.cert, config.tls.key, config.hostname); !st) {
      std::cerr << "hikyaku: " << st.error().message << "\n";
      return 1;
    }
    if (!load_certificates()) return 1;
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

  // The rules mail is handled by (the address book with the SRS identities
  // of hidden forwards, the delivery contract, the reports): one immutable
  // generation, replaced whole by `hikyaku reload`; every transaction,
  // decision and attempt reads the one current when it starts.
  base::SystemClock clock;
  // Hidden forwards removed from the configuration (or by `hikyaku forward
  // clear`) stay known while mail may wait for them: diverted along their
  // fallback, never bounced with the address in the report
  // (config/known_forwards.hpp). Merged before the rules are made; the
  // file is rewritten once the queue is loaded and after every reload.
  const auto known_forwards_file = config.data_dir / config::kKnownForwardsFile;
  auto known_forwards = [&] {
    auto read = config::read_known_forwards(known_forwards_file);
    for (const auto& w : read.warnings) log->warn("{}", w);
    if (read.unread) {
      // Kept for the operator rather than replaced by a file without what
      // it may hold.
      auto aside = known_forwards_file;
      aside += ".bad";
      std::error_code ec;
      std::filesystem::rename(known_forwards_file, aside, ec);
      log->error("{} was not read ({}); removed hidden forwards it names are not known",
                 known_forwards_file.string(),
                 ec ? "and could not be moved aside: " + ec.message() : "moved aside to " + aside.string());
    }
    const size_t configured = config.forwards.size();
    const size_t warnings = config.warnings.size();
    auto known = config::remember_forwards(config, read.entries, clock.now());
    if (config.forwards.size() > configured)
      log->info("{} removed hidden forward(s) still known, for the mail that may wait for them ({})",
                config.forwards.size() - configured, known_forwards_file.string());
    for (size_t i = warnings; i < config.warnings.size(); ++i)
      log->warn("{}: {}", config.warnings[i].where, config.warnings[i].message);
    return known;
  }();
  const auto save_known_forwards = [&] {
    if (auto st = config::write_known_forwards(known_forwards_file, known_forwards); !st)
      log->error("removed hidden forwards would be forgotten by a restart: {}", st.error().message);
  };
  auto running_config = std::make_shared<const config::Config>(config);
  base::Live<config::Config> live_config(running_config);
  base::Live<policy::Rules> rules(policy::Rules::create(running_config, srs_secrets, &clock));
  queue::Spool spool(config.spool_dir(), clock);
  if (auto st = spool.open(); !st) {
    std::cerr << "hikyaku: " << st.error().message << "\n";
    return 1;
  }
  // The counters of /metrics and the status page (issue 16): one object,
  // handed to what counts (the scheduler, the logins), read by the status
  // listener.
  metrics::Metrics metrics;
  // The delivery history (issue 16): written by the scheduler off its hot
  // path, read by the status page and `hikyaku trace`; the counters go on
  // from it. Mail goes on without it.
  std::unique_ptr<history::History> delivery_history;
  if (auto opened = history::History::open(config.data_dir / history::kFileName); !opened) {
    log->error("delivery history not kept: {}", opened.error().message);
  } else {
    delivery_history = std::move(opened).value();
    metrics.restore(delivery_history->totals());
  }
  queue::SchedulerOptions scheduler_options;
  scheduler_options.metrics = &metrics;
  scheduler_options.history = delivery_history.get();
  queue::Scheduler scheduler(spool, rules, clock, scheduler_options);
  delivery::MaildirAgent maildir_agent(delivery::MaildirAgent::Settings::from(config));
  scheduler.register_agent(mail::Target::Kind::mailbox, maildir_agent);

  // The blocking pool: fsync (spool commits), argon2id, DKIM/ARC signatures.
  asio::thread_pool blocking(std::max(4u, std::thread::hardware_concurrency() * 2));
  // Password checks for POP3, IMAP and submission: their own small pool at
  // a lower priority, a bounded queue, the lockout per source address.
  auto login_settings = login::MailboxLogins::Settings::from(config);
  login_settings.metrics = &metrics;
  login::MailboxLogins logins(live_config, credentials, login_settings);
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
  auto smtp_agent = delivery::SmtpAgent::create(rules, io, blocking, dns_cache, *forward_transform);
  if (!smtp_agent.ok()) {
    std::cerr << "hikyaku: " << smtp_agent.error().message << "\n";
    return 1;
  }
  scheduler.register_agent(mail::Target::Kind::forward, **smtp_agent);
  scheduler.register_agent(mail::Target::Kind::relay, **smtp_agent);
  // Intake: inbound SPF/DKIM/ARC/DMARC and Authentication-Results, DMARC
  // reject per domain, plans, stage and commit.
  PostTo on_loop(io.get_executor());
  PostTo on_pool(blocking.get_executor());
  // [scan] (issue 17): clamd and rspamd asked before the 250, on the loop;
  // the MIME walk, attachment decoding and body file reads on the pool.
  std::optional<scan::Client> scanner;
  if (config.scan.enabled()) scanner.emplace(config.scan, io.get_executor(), blocking);
  intake::Intake intake(intake::Settings::from(config), rules, dns_cache, psl ? &*psl : nullptr, spool, scheduler,
                        on_loop, on_pool, scanner ? &*scanner : nullptr);

  smtp::server::ServerContext smtp_ctx{smtp::server::Settings::from(config), intake, tls_context, blocking, &logins};
  // Gateway recipients of rules with verify_recipients: asked at the next
  // hop before 250 (issue 14).
  delivery::CalloutVerifier callout(rules, dns_cache, **smtp_agent, {});
  smtp_ctx.verifier = &callout;
  pop3::Pop3Context pop3_ctx{pop3::Pop3Settings::from(config), logins, tls_context, blocking};
  imap::ImapContext imap_ctx{imap::ImapSettings::from(config), logins, tls_context, blocking};
  // One inotify instance for every session in IDLE (the kernel allows a
  // user 128 by default: one per session would run out).
  imap_ctx.watch = imap::MaildirWatch::create(io.get_executor(), imap_ctx.quiet_moves);
  if (!imap_ctx.watch) log->warn("IMAP IDLE: no inotify instance left: sessions in IDLE poll the Maildir every 2 s");
  // The status listener ([listen] http): everything it reads lives on the
  // event loop it runs on (the limiters, the DNS cache) or is thread-safe
  // (the counters, the scheduler, the spool).
  const auto spool_writable = [&spool, tmp = config.spool_dir() / "tmp"] {
    return ::access(tmp.c_str(), W_OK) == 0 && !spool.commit_in_doubt(1);
  };
  const auto snapshot = [&, spool_writable] {
    metrics::Snapshot s = metrics.snapshot();
    s.queue_messages = scheduler.active_messages();
    s.connections = {smtp_limiter->open(), submission_limiter->open(), pop3_limiter->open(), imap_limiter->open()};
    s.dns_queries = dns_cache.upstream_queries();
    s.dns_cached = dns_cache.hits();
    s.spool_writable = spool_writable();
    for (const auto& d : (*smtp_agent)->slowed_down()) {
      s.slowed_down.emplace_back(
          d.domain, d.paused ? fmt::format("paused until {:%Y-%m-%d %H:%M:%S} UTC",
                                           std::chrono::floor<std::chrono::seconds>(d.paused_until))
                             : fmt::format("{} connection{} at once, one more after each success", d.allowed,
                                           d.allowed == 1 ? "" : "s"));
    }
    return s;
  };
  http::HttpContext http_ctx;
  http_ctx.site.metrics = [snapshot] { return metrics::render_prometheus(snapshot()); };
  http_ctx.site.status_page = [snapshot, &delivery_history, hostname = config.hostname] {
    if (!delivery_history) return metrics::render_status_page(snapshot(), nullptr, hostname);
    const history::Summary summary = delivery_history->summary();
    return metrics::render_status_page(snapshot(), &summary, hostname);
  };
  http_ctx.site.healthy = spool_writable;

  // Listen and accept on every bound listener: only now can a client
  // connect (a port that accepts means a server that is ready).
  using Admission = net::Admission;
  for (const auto& b : bound) {
    if (auto st = net::listen(*b.acceptor, b.endpoint); !st) {
      std::cerr << "hikyaku: " << st.error().message << "\n";
      return 1;
    }
  }
  for (const auto& b : bound) {
    std::shared_ptr<net::ConnectionLimiter> limiter;
    net::SessionHandler handler;
    if (b.name == "smtp" || b.name == "submission" || b.name == "submissions") {
      limiter = b.name == "smtp" ? smtp_limiter : submission_limiter;
      const auto role = b.name == "smtp"         ? smtp::server::Role::mx
                        : b.name == "submission" ? smtp::server::Role::submission
                                                 : smtp::server::Role::submissions;
      handler = [&smtp_ctx, role](net::tcp::socket s, Admission a) {
        return smtp::server::run_session(std::move(s), std::move(a), smtp_ctx, role);
      };
    } else if (b.name == "pop3" || b.name == "pop3s") {
      limiter = pop3_limiter;
      handler = [&pop3_ctx, tls = b.name == "pop3s"](net::tcp::socket s, Admission a) {
        return pop3::run_session(std::move(s), std::move(a), pop3_ctx, tls);
      };
    } else if (b.name == "http") {
      limiter = http_limiter;
      handler = [&http_ctx](net::tcp::socket s, Admission a) {
        return http::run_session(std::move(s), std::move(a), http_ctx);
      };
    } else {
      limiter = imap_limiter;
      handler = [&imap_ctx, tls = b.name == "imaps"](net::tcp::socket s, Admission a) {
        return imap::run_session(std::move(s), std::move(a), imap_ctx, tls);
      };
    }
    net::start_accepting(b.acceptor, b.name, config.access.of(b.name), limiter, std::move(handler));
    log->info("listening: {} on {}", b.name, b.endpoint);
  }

  // SIGHUP (`hikyaku reload`, systemd's ExecReload, certbot's deploy hook,
  // logrotate): re-read the TLS certificate and key files, then the
  // configuration file and the per-user forwards. New handshakes get the
  // new certificates; new transactions, decisions and attempts the new
  // rules; connections in progress keep theirs and are not dropped; queued
  // messages keep their plans (recorded in the spool). A configuration with
  // errors is refused and the running one kept (each error logged with its
  // file and line). The handler runs on the loop, not in the signal.
  uint64_t generation = 1;
  // One reload: the outcome as one line ("loaded ..." or "refused: ...").
  auto reload_configuration = [&]() -> std::string {
    const auto running = live_config.get();
    if (running->source == "<embedded demo>") return "refused: the embedded demo configuration has no file to re-read";
    auto loaded = config::load_config(running->source);
    if (!loaded.errors.empty()) {
      for (const auto& e : loaded.errors) log->error("reload refused: {}", e.str());
      return "refused: " + loaded.errors.front().str() +
             (loaded.errors.size() > 1 ? " (and " + std::to_string(loaded.errors.size() - 1) + " more in the log)" : "");
    }
    auto next = config::reloadable(*running, std::move(*loaded.config));
    if (!next.ok()) return "refused: " + next.error().message;
    auto known = known_forwards;
    config::forget_forwards(known, clock.now(), next->delivery.expire, scheduler.forwards_in_use());
    known = config::remember_forwards(*next, known, clock.now());
    auto fresh = std::make_shared<const config::Config>(std::move(next).value());
    // What the new rules need before they can be used: the Maildirs of new
    // mailboxes, the password files and trust anchors of new routes.
    for (const auto& m : fresh->mailboxes) {
      if (running->find_mailbox(m.name) != nullptr) continue;
      if (auto st = mailbox::Maildir(fresh->mailbox_dir(m.name)).create(); !st)
        return "refused: mailbox " + m.name + ": " + st.error().message;
    }
    if (auto st = (*smtp_agent)->prepare(*fresh); !st) return "refused: " + st.error().message;
    maildir_agent.configure(*fresh);
    for (const auto& w : fresh->warnings) log->warn("{}: {}", w.where, w.message);
    known_forwards = std::move(known);
    save_known_forwards();
    rules.replace(policy::Rules::create(fresh, srs_secrets, &clock, ++generation));
    live_config.replace(fresh);
    return "loaded " + fresh->source.string() + " (generation " + std::to_string(generation) + ": " +
           std::to_string(fresh->mailboxes.size()) + " mailboxes, " + std::to_string(fresh->addresses.size()) +
           " addresses, " + std::to_string(fresh->forwards.size()) + " forwards, " +
           std::to_string(fresh->routes.size()) + " routes)";
  };
  // The outcome of each reload is also written to DATA_DIR/state/reload,
  // which `hikyaku reload` waits for and prints.
  const auto reload_status = config.data_dir / "state" / "reload";
  uint64_t reloads = 0;
  std::function<void(const boost::system::error_code&, int)> on_hangup = [&](const boost::system::error_code& ec,
                                                                             int /*signo*/) {
    if (ec) return;
    // A certificate that fails to load is part of the answer `hikyaku
    // reload` prints (and its exit status): an operator who renewed one
    // must not believe it is served.
    std::string tls_failure;
    if (certificates) {
      if (auto reloaded = certificates->reload(); !reloaded.ok()) {
        tls_failure = "; " + std::string(admin::kTlsNotReloaded) + ": " + reloaded.error().message;
        log->error("SIGHUP: TLS certificates not reloaded, the old ones stay in use: {}", reloaded.error().message);
      } else {
        for (const auto& info : *reloaded) log->info("SIGHUP: TLS certificate reloaded: {}", info.str());
      }
    }
    const std::string outcome = reload_configuration() + tls_failure;
    if (outcome.starts_with("loaded")) {
      std::string kept;
      for (const auto& k : config::restart_only_settings()) kept += (kept.empty() ? "" : ", ") + k;
      log->info("reload: {}; kept as started: {}", outcome, kept);
    } else {
      log->error("reload {}; the running configuration stays", outcome);
    }
    if (auto st = base::replace_file_durable(reload_status,
                                             "reload " + std::to_string(++reloads) + ": " + outcome + "\n",
                                             /*sync=*/false);
        !st)
      log->warn("reload: cannot write {}: {}", reload_status.string(), st.error().message);
    hangups.async_wait(on_hangup);
  };
  hangups.async_wait(on_hangup);

  std::error_code stale;
  std::filesystem::remove(config.data_dir / ".hikyaku.pid.tmp", stale);  // written by earlier versions

  std::error_code old_status;
  std::filesystem::remove(reload_status, old_status);  // a previous run's answers
  // Resume every unfinished delivery, then start delivering.
  if (auto st = scheduler.start(); !st) {
    std::cerr << "hikyaku: " << st.error().message << "\n";
    return 1;
  }
  config::forget_forwards(known_forwards, clock.now(), config.delivery.expire, scheduler.forwards_in_use());
  save_known_forwards();

  // `hikyaku queue flush` reaches the running server by DATA_DIR/control.
  auto control = ControlListener::open(io, config.data_dir / admin::kControlSocket,
                                       [&](const admin::ControlRequest& request) {
    const size_t made_due = scheduler.flush(queue::FlushFilter{request.queue_id, request.destination});
    std::string what = std::to_string(made_due) + (made_due == 1 ? " waiting delivery" : " waiting deliveries") +
                       " made due";
    if (!request.queue_id.empty()) what += " (message " + request.queue_id + ")";
    if (!request.destination.empty()) what += " (destination " + request.destination + ")";
    log->info("queue flush: {}", what);
    return admin::ControlReply{true, what};
  });
  if (!control) {
    // Mail goes on without it; `queue flush` then says the server does not listen.
    log->error("{}: `hikyaku queue flush` cannot reach this server", control.error().message);
  }

  // Maildir's tmp/ cleanup (mailbox/maildir.hpp): what a writer that died
  // left there (a delivery killed before its link into new/), at start and
  // every 8 hours, on the blocking pool.
  asio::steady_timer tmp_sweeps(io);
  std::function<void()> sweep_tmp = [&] {
    asio::post(blocking, [log, current = live_config.get()] {
      for (const auto& m : current->mailboxes) {
        auto removed =
            mailbox::Maildir(current->mailbox_dir(m.name)).remove_stale_tmp(std::chrono::system_clock::now());
        if (!removed) {
          log->warn("mailbox {}: tmp/ not cleaned: {}", m.name, removed.error().message);
        } else if (*removed > 0) {
          log->info("mailbox {}: removed {} entr{} of tmp/ untouched for 36 hours (left by a writer that stopped)",
                    m.name, *removed, *removed == 1 ? "y" : "ies");
        }
      }
    });
    tmp_sweeps.expires_after(std::chrono::hours(8));
    tmp_sweeps.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) sweep_tmp();
    });
  };
  sweep_tmp();

  (void)std::signal(SIGPIPE, SIG_IGN);  // SIG_ERR only for an invalid signal number
  log->info("hikyaku ready ({} , data in {})", config.source.string(), config.data_dir.string());
  io.run();
  if (control) control->reset();  // no more requests; the socket is removed
  dns_watch.stop();
  scheduler.halt();       // no new attempt: the agents are stopping
  (*smtp_agent)->stop();  // in-flight forwards will not resume: report them temporary
  blocking.join();
  logins.stop();
  // Nothing posts to the loop any more. A session whose message was staged
  // but never committed (the loop stopped between its end of DATA and the
  // commit) is destroyed here: its message is abandoned (the client saw no
  // 250), and the outcomes of forwards held for its commit are settled, so
  // that stop() does not wait for them for ever.
  io.discard_pending();
  scheduler.stop();
  pid_lock->remove();
  log->info("stopped");
  return 0;
}

}  // namespace hikyaku::app
