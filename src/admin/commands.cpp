#include "admin/commands.hpp"

#include <istream>
#include <ostream>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "admin/service_user.hpp"
#include "base/clock.hpp"
#include "base/file.hpp"
#include "base/privileges.hpp"
#include "base/strings.hpp"
#include "config/known_forwards.hpp"
#include "mail/dsn.hpp"
#include "mail/target.hpp"
#include "policy/forwards.hpp"
#include "queue/spool.hpp"
#include "sasl/credential_store.hpp"
#include "sasl/plain.hpp"
#include "srs/srs.hpp"

namespace hikyaku::admin {

int check_config(const config::LoadResult& loaded, std::ostream& out, std::ostream& err) {
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) err << e.str() << "\n";
    err << loaded.errors.size() << " error" << (loaded.errors.size() == 1 ? "" : "s") << "\n";
    return 1;
  }
  // Every file the configuration names must be readable: a missing key is
  // found here, not by a server that forwards unsigned (issue 16 item 5).
  const auto unreadable = config::unreadable_files(*loaded.config);
  if (!unreadable.empty()) {
    for (const auto& e : unreadable) err << e.str() << "\n";
    err << unreadable.size() << " unreadable file" << (unreadable.size() == 1 ? "" : "s") << "\n";
    return 1;
  }
  // Relay passwords (issue 14): serve refuses a file every user may read.
  std::vector<std::string> exposed;
  for (const auto& rule : loaded.config->routes) {
    for (const auto* a : rule.logins())
      if (auto secret = base::read_private_line(a->password_file); !secret.ok())
        exposed.push_back(rule.where + ": route password file " + secret.error().message);
  }
  // The SRS secrets, as serve reads them (an empty file stops serve).
  std::vector<std::string> srs_warnings;
  if (!loaded.config->srs.domain.empty()) {
    std::string where = loaded.config->source.string();
    for (const auto& f : loaded.config->files)
      if (f.key == "srs.secret_file") where = f.where;
    if (auto secrets = srs::read_secrets(loaded.config->srs.secret_file); !secrets.ok())
      exposed.push_back(where + ": srs.secret_file: " + secrets.error().message);
    else if (auto warning = srs::secret_file_warning(loaded.config->srs.secret_file))
      srs_warnings.push_back(where + ": warning: " + *warning);
  }
  if (!exposed.empty()) {
    for (const auto& e : exposed) err << e << "\n";
    err << exposed.size() << " error" << (exposed.size() == 1 ? "" : "s") << "\n";
    return 1;
  }
  // The system user to run as (issue 13 item 5): it must exist, and the
  // data directory, if there already, must be its.
  const config::Config& c = *loaded.config;
  auto account = configured_account(c);
  if (account && *account) {
    if (auto owned = base::check_owner(c.data_dir, **account, c.data_dir); !owned)
      account = base::make_error(c.user_where + ": user: " + owned.error().message);
  }
  if (!account) {
    err << account.error().message << "\n1 error\n";
    return 1;
  }
  for (const auto& w : c.warnings) err << w.where << ": warning: " << w.message << "\n";
  for (const auto& w : srs_warnings) err << w << "\n";
  out << c.source.string() << ": ok\n";
  if (*account)
    out << "serve runs as user " << (*account)->name << " (uid " << (*account)->uid << ", gid " << (*account)->gid
        << "; top-level key user)\n";
  else
    out << "serve runs as the user that starts it (no top-level key user)\n";
  if (!c.domains.empty()) {
    if (c.postmaster.empty())
      out << "postmaster@ your domains is refused: there is no [[mailbox]] to take it (RFC 5321 §4.5.1)\n";
    else
      out << "postmaster@ your domains goes to mailbox " << c.postmaster
          << " where no [[address]] says otherwise (top-level key postmaster)\n";
  }
  return 0;
}

int user_passwd(const config::Config& config, const std::string& name, std::istream& in, std::ostream& out,
                std::ostream& err) {
  if (!config.find_mailbox(name)) {
    err << "no [[mailbox]] named '" << name << "' in " << config.source.string() << "\n";
    return 1;
  }
  std::string password;
  std::getline(in, password);
  while (!password.empty() && (password.back() == '\r' || password.back() == '\n')) password.pop_back();
  if (password.empty()) {
    err << "empty password (give it on standard input)\n";
    return 1;
  }
  if (password.size() > sasl::kMaxPlainField) {
    err << "password of " << password.size() << " octets: at most " << sasl::kMaxPlainField
        << " (SASL PLAIN and POP3 PASS carry no more, RFC 4616 §2)\n";
    return 1;
  }
  sasl::CredentialStore store(config.users_file());
  if (auto st = store.set_password(name, password); !st) {
    err << st.error().message << "\n";
    return 1;
  }
  out << "password set for " << name << "\n";
  return 0;
}

int user_list(const config::Config& config, std::ostream& out, std::ostream& err) {
  sasl::CredentialStore store(config.users_file());
  auto users = store.users();
  if (!users.ok()) {
    err << users.error().message << "\n";
    return 1;
  }
  for (const auto& m : config.mailboxes) {
    bool has_password = false;
    for (const auto& u : *users) has_password = has_password || u == m.name;
    out << m.name << (has_password ? "" : " (no password)") << "\n";
  }
  return 0;
}

int user_del(const config::Config& config, const std::string& name, std::ostream& out, std::ostream& err) {
  sasl::CredentialStore store(config.users_file());
  if (auto st = store.remove(name); !st) {
    err << st.error().message << "\n";
    return 1;
  }
  out << "password removed for " << name << " (the mailbox stays in the configuration)\n";
  return 0;
}

namespace {

// The entries of DATA_DIR/forwards (none when there is no file); nullopt
// after printing the file's errors.
std::optional<std::vector<config::UserForward>> read_user_forwards(const config::Config& config,
                                                                   std::optional<std::string>& text,
                                                                   std::ostream& err) {
  const auto file = config.forwards_file();
  auto read = base::read_file(file);
  if (!read.ok()) {
    if (read.error().error_number == ENOENT) return std::vector<config::UserForward>{};
    err << read.error().message << "\n";
    return std::nullopt;
  }
  text = *read;
  auto parsed = config::parse_user_forwards(*read, file.string());
  if (!parsed.errors.empty()) {
    for (const auto& e : parsed.errors) err << e.str() << "\n";
    err << "fix or remove " << file.string() << "\n";
    return std::nullopt;
  }
  return std::move(parsed.forwards);
}

// Replace DATA_DIR/forwards with `text` (temporary, fsync, rename, fsync the
// directory; 0600 like DATA_DIR/users), or remove it when `text` is empty.
base::Status write_user_forwards(const config::Config& config, const std::optional<std::string>& text) {
  const auto file = config.forwards_file();
  if (!text) {
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) return base::errno_error("unlink", file, errno);
    return base::fsync_directory(file.parent_path());
  }
  if (auto st = base::ensure_directory(file.parent_path()); !st) return st;
  auto tmp = file;
  tmp += ".tmp." + std::to_string(::getpid());  // distinct per concurrent run; O_EXCL
  ::unlink(tmp.c_str());                         // left over by a crashed run of this pid
  return base::write_file_durable(tmp, file, *text);
}

void print_reload_hint(const config::Config& config, std::ostream& out) {
  out << "run \"hikyaku reload --config " << config.source.string()
      << "\" (or send SIGHUP) to apply it to the running server\n";
}

bool known_mailbox(const config::Config& config, const std::string& name, std::ostream& err) {
  if (config.find_mailbox(name) != nullptr) return true;
  err << "no [[mailbox]] named '" << name << "' in " << config.source.string() << "\n";
  return false;
}

}  // namespace

int forward_set(const config::Config& config, const config::UserForward& requested, std::ostream& out,
                std::ostream& err) {
  // Sanity checks: the file's syntax rules (through a rendering of the one
  // entry), then the loader's cross-checks against the configuration.
  if (!known_mailbox(config, requested.name, err)) return 1;
  config::UserForward entry;
  entry.name = requested.name;
  entry.keep_copy = requested.keep_copy;
  for (const auto& to : requested.to) entry.to.push_back(base::to_lower(to));
  if (!requested.fallback.empty()) {
    auto target = mail::Target::parse(requested.fallback);
    if (!target || target->kind != mail::Target::Kind::mailbox) {
      err << "--fallback: expected \"mailbox:NAME\", not '" << requested.fallback << "'\n";
      return 1;
    }
    entry.fallback = target->value;
  }
  auto checked = config::parse_user_forwards(config::render_user_forwards({entry}), "forward set");
  if (checked.errors.empty()) {
    config::Config scratch = config;
    std::vector<config::ConfigError> warnings;
    checked.errors = config::apply_user_forwards(scratch, checked.forwards, warnings);
  }
  if (!checked.errors.empty()) {
    for (const auto& e : checked.errors) err << e.message << "\n";
    return 1;
  }

  // The new file: NAME's entry replaced (or added), the others unchanged.
  std::optional<std::string> old_text;
  auto entries = read_user_forwards(config, old_text, err);
  if (!entries) return 1;
  auto it = std::find_if(entries->begin(), entries->end(), [&](const auto& e) { return e.name == entry.name; });
  if (it != entries->end())
    *it = checked.forwards.front();
  else
    entries->push_back(checked.forwards.front());
  const std::string text = config::render_user_forwards(*entries);

  // The whole configuration must load with it, before and after writing.
  auto trial = config::load_config(config.source, {.user_forwards_text = text});
  if (!trial.errors.empty()) {
    for (const auto& e : trial.errors) err << e.str() << "\n";
    err << "the configuration would not load with this forward; nothing written\n";
    return 1;
  }
  if (auto st = write_user_forwards(config, text); !st) {
    err << st.error().message << "\n";
    return 1;
  }
  if (auto reloaded = config::load_config(config.source); !reloaded.errors.empty()) {
    for (const auto& e : reloaded.errors) err << e.str() << "\n";
    if (auto st = write_user_forwards(config, old_text); !st)
      err << "could not restore " << config.forwards_file().string() << ": " << st.error().message << "\n";
    else
      err << "the configuration does not load with this forward; " << config.forwards_file().string()
          << " restored\n";
    return 1;
  }
  out << config::describe_user_forward(config, checked.forwards.front()) << "\n";
  print_reload_hint(config, out);
  return 0;
}

int forward_show(const config::Config& config, const std::string& name, std::ostream& out, std::ostream& err) {
  if (!name.empty() && !known_mailbox(config, name, err)) return 1;
  std::optional<std::string> text;
  auto entries = read_user_forwards(config, text, err);
  if (!entries) return 1;
  bool any = false;
  for (const auto& e : *entries) {
    if (!name.empty() && e.name != name) continue;
    out << config::describe_user_forward(config, e) << "\n";
    any = true;
  }
  if (!any) out << (name.empty() ? std::string("no per-user forwards") : "no forward for " + name) << "\n";
  return 0;
}

int forward_clear(const config::Config& config, const std::string& name, std::ostream& out, std::ostream& err) {
  if (!known_mailbox(config, name, err)) return 1;
  std::optional<std::string> text;
  auto entries = read_user_forwards(config, text, err);
  if (!entries) return 1;
  auto it = std::find_if(entries->begin(), entries->end(), [&](const auto& e) { return e.name == name; });
  if (it == entries->end()) {
    out << "no forward for " << name << " (nothing to clear)\n";
    return 0;
  }
  entries->erase(it);
  const std::optional<std::string> new_text =
      entries->empty() ? std::nullopt : std::optional(config::render_user_forwards(*entries));
  if (auto st = write_user_forwards(config, new_text); !st) {
    err << st.error().message << "\n";
    return 1;
  }
  out << "forward for " << name << " cleared\n";
  print_reload_hint(config, out);
  return 0;
}

namespace {

std::string format_time(base::Clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "-";
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "-";
  return buf;
}

// The addresses kept out of what the queue commands print: the
// configuration's hidden forwards and the removed ones the server still
// knows (DATA_DIR/state/known-forwards), whose mail may still be queued.
std::vector<std::string> addresses_to_hide(const config::Config& config) {
  auto hidden = policy::hidden_addresses(config);
  for (const auto& k : config::read_known_forwards(config.data_dir / config::kKnownForwardsFile).entries)
    hidden.push_back(k.forward.to);
  return hidden;
}

}  // namespace

int queue_list(const config::Config& config, std::ostream& out, std::ostream& err) {
  base::SystemClock clock;
  queue::Spool spool(config.spool_dir(), clock);
  auto entries = spool.list();
  if (!entries.ok()) {
    err << entries.error().message << "\n";
    return 1;
  }
  const auto hidden = addresses_to_hide(config);
  for (const auto& e : *entries)
    out << e.id << "  " << format_time(e.arrival) << "  " << e.size << " bytes  <" << mail::redact(e.sender, hidden)
        << ">  " << e.pending << "/" << e.total << " pending\n";
  out << entries->size() << " message" << (entries->size() == 1 ? "" : "s") << " in the queue\n";
  return 0;
}

int queue_show(const config::Config& config, const std::string& id, bool reveal, std::ostream& out,
               std::ostream& err) {
  base::SystemClock clock;
  queue::Spool spool(config.spool_dir(), clock);
  auto message = spool.load(id);
  if (!message.ok()) {
    err << message.error().message << "\n";
    return 1;
  }
  std::ostringstream text;
  text << "id: " << message->id << "\narrival: " << format_time(message->arrival) << "\nsender: <"
       << message->envelope.sender_str() << ">\nsize: " << message->message_size << "\n";
  for (const auto& t : message->slots)
    text << "recipient " << t.recipient << " -> " << t.target.str() << ": " << policy::to_string(t.status)
         << ", attempts " << t.attempts << ", next " << format_time(t.next_attempt)
         << (t.last_reply.empty() ? "" : ", last reply: " + t.last_reply) << "\n";
  // The whole text: the far side's reply often echoes the recipient.
  out << (reveal ? text.str() : mail::redact(text.str(), addresses_to_hide(config)));
  return 0;
}

int queue_delete(const config::Config& config, const std::string& id, std::ostream& out, std::ostream& err) {
  base::SystemClock clock;
  queue::Spool spool(config.spool_dir(), clock);
  if (auto loaded = spool.load(id); !loaded.ok()) {
    err << loaded.error().message << "\n";
    return 1;
  }
  if (auto st = spool.remove(id); !st) {
    err << st.error().message << "\n";
    return 1;
  }
  out << "deleted " << id << " (a running server forgets it at its next attempt)\n";
  return 0;
}

}  // namespace hikyaku::admin
