#include "admin/commands.hpp"

#include <istream>
#include <ostream>

#include "sasl/credential_store.hpp"

namespace hikyaku::admin {

int check_config(const config::LoadResult& loaded, std::ostream& out, std::ostream& err) {
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) err << e.str() << "\n";
    err << loaded.errors.size() << " error" << (loaded.errors.size() == 1 ? "" : "s") << "\n";
    return 1;
  }
  out << loaded.config->source.string() << ": ok\n";
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

int queue_list(const config::Config&, std::ostream&, std::ostream& err) {
  err << "queue list: not available yet\n";
  return 2;
}

}  // namespace hikyaku::admin
