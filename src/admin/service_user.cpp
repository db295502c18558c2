#include "admin/service_user.hpp"

#include <unistd.h>

#include <ostream>

namespace hikyaku::admin {

base::Result<std::optional<base::Account>> configured_account(const config::Config& config) {
  if (config.user.empty()) return std::optional<base::Account>{};
  const std::string at = config.user_where.empty() ? config.source.string() : config.user_where;
  auto found = base::find_account(config.user);
  if (!found) return base::make_error(at + ": user: " + found.error().message);
  if (!found->has_value())
    return base::make_error(at + ": user '" + config.user + "' does not exist (create it as root: adduser --system " +
                            "--group --home " + config.data_dir.string() + " " + config.user + ")");
  if ((*found)->uid == 0 || (*found)->gid == 0)
    return base::make_error(at + ": user '" + config.user +
                            "' has uid or gid 0: running as it drops nothing; name an unprivileged system user");
  return found;
}

base::Result<ServiceUser> service_user(const config::Config& config) {
  auto account = configured_account(config);
  if (!account) return account.error();
  ServiceUser out;
  out.account = *account;
  if (!out.account) return out;
  switch (base::privilege_action(::geteuid(), out.account->uid)) {
    case base::PrivilegeAction::drop:
      out.drop = true;
      break;
    case base::PrivilegeAction::keep:
      break;
    case base::PrivilegeAction::refuse:
      return base::make_error(config.user_where + ": user '" + config.user + "' (uid " +
                              std::to_string(out.account->uid) + "): hikyaku runs as uid " +
                              std::to_string(::geteuid()) + "; start it as root (it drops to " + config.user +
                              ") or as " + config.user);
  }
  return out;
}

int as_service_user(const config::Config& config, std::ostream& err) {
  auto su = service_user(config);
  if (!su) {
    err << "hikyaku: " << su.error().message << "\n";
    return 1;
  }
  if (!su->drop) return 0;
  if (auto st = base::prepare_data_dir(config.data_dir, *su->account); !st) {
    err << "hikyaku: " << st.error().message << "\n";
    return 1;
  }
  if (auto st = base::drop_privileges(*su->account); !st) {
    err << "hikyaku: " << st.error().message << "\n";
    return 1;
  }
  return 0;
}

}  // namespace hikyaku::admin
