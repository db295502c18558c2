// Purpose:   Running as an unprivileged system user (issue 13 item 5): find
//            the configured account, decide from the effective uid whether to
//            drop root, stay (already that user) or refuse; give data_dir to
//            the account; and drop root for good — supplementary groups,
//            gid, uid, in that order — then prove root cannot be regained.
// Standards: POSIX setgid(2)/setuid(2) for a privileged process (real,
//            effective and saved ids all change); glibc applies the change
//            to every thread of the process (its setxid signal), so threads
//            started before the drop end up unprivileged too.
// Trust:     the one place that changes process credentials; account names
//            come from the (trusted) configuration.
// Concurrency: drop_privileges changes the whole process: call it once, from
//            the main thread. The other functions are free of shared state.
// Errors:    Status/Result with the account name and errno text; a failed
//            drop is fatal to the caller (serve refuses to run).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "base/result.hpp"

namespace hikyaku::base {

struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The password database's entry for `name` (getpwnam_r); nullopt when there
// is no such user, an error only when the lookup itself fails.
Result<std::optional<Account>> find_account(const std::string& name);

// What a process with effective uid `euid` does about running as `target`:
// root drops to it, `target` itself keeps going, anyone else is refused.
enum class PrivilegeAction { drop, keep, refuse };
PrivilegeAction privilege_action(uid_t euid, uid_t target);

// Before dropping (as root): `dir` missing is created (mode 0700, parents
// as needed) and given to `account`; `dir` present must already be the
// account's, else an error that says which chown fixes it.
Status prepare_data_dir(const std::filesystem::path& dir, const Account& account);

// `path` (when it exists; symbolic links are not followed) belongs to
// `account`; else an error naming the owner and the chown that fixes it.
Status check_owner(const std::filesystem::path& path, const Account& account,
                   const std::filesystem::path& data_dir);

// setgroups/initgroups, setgid, setuid, PR_SET_NO_NEW_PRIVS; then verify
// that every real/effective/saved id is the account's and that setuid(0)
// and setgid(0) fail. Refuses uid 0 and gid 0 targets.
Status drop_privileges(const Account& account);

}  // namespace hikyaku::base
