// Purpose:   The `hikyaku` command line (DESIGN.md "user-facing interface"):
//            serve, check-config, check dns, reload, user, forward, queue,
//            trace, dkim keygen, dns. Parses arguments, loads the
//            configuration and hands over to app::serve or admin commands.
// Trust:     started as root with a configured `user`, every command that
//            touches data_dir drops to that user first (admin/service_user).
// Errors:    configuration errors are printed as FILE:LINE:COL: message;
//            exit status 0 ok, 1 error, 2 usage.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "admin/check_dns.hpp"
#include "admin/commands.hpp"
#include "admin/dns_commands.hpp"
#include "admin/reload_command.hpp"
#include "admin/service_user.hpp"
#include "admin/trace_command.hpp"
#include "app/server.hpp"
#include "config/config.hpp"

namespace {

using hikyaku::config::LoadResult;

LoadResult load(const std::string& path, const hikyaku::config::LoadOptions& options = {}) {
  if (path.empty())
    return hikyaku::config::load_config_text(hikyaku::config::demo_config_text(), "<embedded demo>",
                                             std::filesystem::current_path(), options);
  return hikyaku::config::load_config(path, options);
}

// Load or print every error and return nullptr.
std::optional<hikyaku::config::Config> load_or_report(const std::string& path,
                                                      const hikyaku::config::LoadOptions& options = {}) {
  auto loaded = load(path, options);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::cerr << e.str() << "\n";
    return std::nullopt;
  }
  return std::move(loaded.config);
}

}  // namespace

// An exception that escapes is a bug (errors are values, STYLE R7): it
// terminates with its message, like HIKYAKU_CHECK.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  CLI::App app{"hikyaku: a mail server that forwards to Gmail and never bounces"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hikyaku " HIKYAKU_VERSION);
  std::string config_path;

  auto* serve = app.add_subcommand("serve", "run the server (without --config: the embedded demo)");
  serve->add_option("--config", config_path, "configuration file (TOML)");

  auto* check = app.add_subcommand("check-config", "validate the configuration");
  check->add_option("--config", config_path, "configuration file (TOML)")->required();

  auto* check_group = app.add_subcommand("check", "check what is published against the configuration");
  check_group->require_subcommand(1);
  auto* check_dns_cmd = check_group->add_subcommand(
      "dns", "ask the DNS whether MX, SPF, DKIM, DMARC and reverse DNS match the configuration");
  check_dns_cmd->add_option("--config", config_path, "configuration file")->required();

  auto* user = app.add_subcommand("user", "manage mailbox logins");
  user->require_subcommand(1);
  std::string user_name;
  auto* passwd = user->add_subcommand("passwd", "set a mailbox's password (read from stdin)");
  passwd->add_option("name", user_name, "mailbox name")->required();
  passwd->add_option("--config", config_path, "configuration file")->required();
  auto* list = user->add_subcommand("list", "list mailboxes and whether they have a password");
  list->add_option("--config", config_path, "configuration file")->required();
  auto* del = user->add_subcommand("del", "remove a mailbox's password");
  del->add_option("name", user_name, "mailbox name")->required();
  del->add_option("--config", config_path, "configuration file")->required();

  auto* forward = app.add_subcommand("forward", "per-user forwarding (DATA_DIR/forwards)");
  forward->require_subcommand(1);
  hikyaku::config::UserForward forward_entry;
  auto* fset = forward->add_subcommand("set", "forward a mailbox's mail to addresses elsewhere (hidden)");
  fset->add_option("name", forward_entry.name, "mailbox name")->required();
  fset->add_option("address", forward_entry.to, "addresses to forward to")->required()->expected(1, -1);
  fset->add_flag("--keep-copy", forward_entry.keep_copy, "also keep a copy in the mailbox");
  fset->add_option("--fallback", forward_entry.fallback,
                   "mailbox:NAME that takes mail the far side refuses (default mailbox:<name>)");
  fset->add_option("--config", config_path, "configuration file")->required();
  std::string forward_name;
  auto* fshow = forward->add_subcommand("show", "show a mailbox's forward (without NAME: all)");
  fshow->add_option("name", forward_name, "mailbox name");
  fshow->add_option("--config", config_path, "configuration file")->required();
  auto* fclear = forward->add_subcommand("clear", "stop forwarding a mailbox's mail");
  fclear->add_option("name", forward_name, "mailbox name")->required();
  fclear->add_option("--config", config_path, "configuration file")->required();

  auto* queue = app.add_subcommand("queue", "inspect the queue");
  queue->require_subcommand(1);
  auto* qlist = queue->add_subcommand("list", "list queued messages");
  qlist->add_option("--config", config_path, "configuration file")->required();
  std::string queue_id;
  bool reveal = false;
  auto* qshow = queue->add_subcommand("show", "show one message's delivery state");
  qshow->add_option("id", queue_id, "queue id")->required();
  qshow->add_flag("--reveal", reveal, "print hidden forward addresses instead of <hidden>");
  qshow->add_option("--config", config_path, "configuration file")->required();
  auto* qdel = queue->add_subcommand("delete", "delete a queued message");
  qdel->add_option("id", queue_id, "queue id")->required();
  qdel->add_option("--config", config_path, "configuration file")->required();
  std::string flush_destination;
  auto* qflush = queue->add_subcommand(
      "flush", "attempt waiting deliveries now (all, one message's, or one destination's); works with the server stopped too");
  qflush->add_option("id", queue_id, "queue id (default: every message)");
  qflush->add_option("--destination", flush_destination, "only deliveries to this domain");
  qflush->add_option("--config", config_path, "configuration file")->required();

  std::string trace_query;
  auto* trace = app.add_subcommand("trace", "a message's timeline from the delivery history");
  trace->add_option("what", trace_query, "queue id, or an address (sender or recipient; <> the null sender)")
      ->required();
  trace->add_option("--config", config_path, "configuration file")->required();

  auto* dkim = app.add_subcommand("dkim", "DKIM keys");
  dkim->require_subcommand(1);
  std::string dkim_domain;
  std::string dkim_selector;
  std::string dkim_algo = "rsa";
  auto* keygen = dkim->add_subcommand("keygen", "generate a signing key and print its DNS record");
  keygen->add_option("domain", dkim_domain, "the signing domain")->required();
  auto* selector_option = keygen->add_option(
      "--selector", dkim_selector,
      "DKIM selector (default: the [[domain]]'s dkim_selector, else " +
          std::string(hikyaku::admin::kDefaultDkimSelector) + ")");
  keygen->add_option("--algo", dkim_algo, "rsa (2048 bits) or ed25519")
      ->check(CLI::IsMember({"rsa", "ed25519"}))->capture_default_str();
  keygen->add_option("--config", config_path, "configuration file")->required();

  auto* reload = app.add_subcommand(
      "reload", "make the running server re-read its configuration and per-user forwards (errors: refused, the "
                "running configuration stays)");
  reload->add_option("--config", config_path, "configuration file")->required();

  auto* dns = app.add_subcommand("dns", "print the DNS records to publish (MX, SPF, DKIM, DMARC)");
  dns->add_option("--config", config_path, "configuration file")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (*check) return hikyaku::admin::check_config(load(config_path), std::cout, std::cerr);
  // `forward` edits DATA_DIR/forwards against the configuration file alone,
  // so that a forwards file that no longer loads can still be repaired.
  const bool forward_command = *fset || *fshow || *fclear;
  auto config = load_or_report(config_path, {.user_forwards = !forward_command, .user_forwards_text = std::nullopt});
  if (!config) return *check_dns_cmd ? 2 : 1;
  if (*serve) return hikyaku::app::serve(std::move(*config), {.demo = config_path.empty()});
  // Commands that read or write data_dir (users, spool) run as the
  // configured `user`, so that what they create is the server's own.
  if ((*passwd || *list || *del || forward_command || *qlist || *qshow || *qdel || *reload || *trace) &&
      hikyaku::admin::as_service_user(*config, std::cerr) != 0)
    return 1;
  if (*fset) return hikyaku::admin::forward_set(*config, forward_entry, std::cout, std::cerr);
  if (*fshow) return hikyaku::admin::forward_show(*config, forward_name, std::cout, std::cerr);
  if (*fclear) return hikyaku::admin::forward_clear(*config, forward_name, std::cout, std::cerr);
  if (*passwd) return hikyaku::admin::user_passwd(*config, user_name, std::cin, std::cout, std::cerr);
  if (*list) return hikyaku::admin::user_list(*config, std::cout, std::cerr);
  if (*del) return hikyaku::admin::user_del(*config, user_name, std::cout, std::cerr);
  if (*keygen)
    return hikyaku::admin::dkim_keygen(*config, dkim_domain,
                                       selector_option->count() > 0 ? std::optional(dkim_selector) : std::nullopt,
                                       dkim_algo, std::cout, std::cerr);
  if (*dns) return hikyaku::admin::dns_records(*config, std::cout, std::cerr);
  if (*check_dns_cmd) return hikyaku::admin::check_dns(*config, std::cout, std::cerr);
  if (*reload) return hikyaku::admin::reload(*config, std::cout, std::cerr);
  if (*qlist) return hikyaku::admin::queue_list(*config, std::cout, std::cerr);
  if (*qshow) return hikyaku::admin::queue_show(*config, queue_id, reveal, std::cout, std::cerr);
  if (*qdel) return hikyaku::admin::queue_delete(*config, queue_id, std::cout, std::cerr);
  if (*qflush) return hikyaku::admin::queue_flush(*config, queue_id, flush_destination, std::cout, std::cerr);
  if (*trace) return hikyaku::admin::trace(*config, trace_query, std::cout, std::cerr);
  return 2;
}
