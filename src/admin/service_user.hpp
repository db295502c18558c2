// Purpose:   The configured `user` (issue 13 item 5) resolved against this
//            system and this process: does the account exist, and does this
//            process drop to it (started as root), keep it (started as it)
//            or refuse (started as someone else)? Shared by `serve`, by
//            check-config and by the operator commands that write into
//            data_dir, which run as that user so that every file they
//            create belongs to it (a root-owned DATA_DIR/users would lock
//            the server out of its own logins).
// Trust:     reads the password database; as_service_user changes the
//            process's credentials for good (base/privileges.hpp).
// Concurrency: call from the main thread, before other threads matter.
// Errors:    Result whose message starts with the configuration position of
//            `user` (FILE:LINE:COL: user 'x' does not exist ...).
#pragma once

#include <iosfwd>
#include <optional>

#include "base/privileges.hpp"
#include "base/result.hpp"
#include "config/config.hpp"

namespace hikyaku::admin {

struct ServiceUser {
  std::optional<base::Account> account;  // empty: no `user` configured
  bool drop = false;                     // this process is root and drops to it
};

// Look up config.user; an unknown user, a uid-0 user, or a process that is
// neither root nor that user is an error.
base::Result<ServiceUser> service_user(const config::Config& config);

// The account alone (exists, not uid 0), whoever runs this: for check-config.
base::Result<std::optional<base::Account>> configured_account(const config::Config& config);

// For operator commands: when root and `user` is set, make data_dir the
// user's (created if missing) and drop to the user. 0 on success, else 1
// with the reason on `err`.
int as_service_user(const config::Config& config, std::ostream& err);

}  // namespace hikyaku::admin
