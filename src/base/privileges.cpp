#include "base/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/file.hpp"

namespace hikyaku::base {
namespace {

std::string chown_hint(const Account& account, const std::filesystem::path& data_dir) {
  return "as root, run: chown -R " + account.name + ": " + data_dir.string();
}

}  // namespace

Result<std::optional<Account>> find_account(const std::string& name) {
  if (name.empty()) return std::optional<Account>{};
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<size_t>(size) : 16384);
  for (;;) {
    struct passwd pw{};
    struct passwd* found = nullptr;
    const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    // getpwnam_r(3): 0 with no entry, or ENOENT/ESRCH/EBADF/EPERM, all mean
    // "no such user" for files and NSS back ends alike.
    if (found == nullptr) {
      if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM) return std::optional<Account>{};
      return Error{"look up user '" + name + "': " + std::strerror(rc), rc};
    }
    return std::optional<Account>{Account{pw.pw_name, pw.pw_uid, pw.pw_gid}};
  }
}

PrivilegeAction privilege_action(uid_t euid, uid_t target) {
  if (euid == target) return PrivilegeAction::keep;
  if (euid == 0) return PrivilegeAction::drop;
  return PrivilegeAction::refuse;
}

Status prepare_data_dir(const std::filesystem::path& dir, const Account& account) {
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return errno_error("stat", dir, errno);
    // Missing: create it for the account (its parents stay root's).
    if (auto made = ensure_directory(dir, 0700); !made) return made;
    if (::chown(dir.c_str(), account.uid, account.gid) != 0) return errno_error("chown", dir, errno);
    return {};
  }
  if (!S_ISDIR(st.st_mode)) return make_error("data_dir " + dir.string() + " is not a directory");
  return check_owner(dir, account, dir);
}

Status check_owner(const std::filesystem::path& path, const Account& account, const std::filesystem::path& data_dir) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return errno_error("stat", path, errno);
  }
  if (st.st_uid == account.uid) return {};
  return make_error(path.string() + " belongs to uid " + std::to_string(st.st_uid) + ", not to user '" +
                    account.name + "' (uid " + std::to_string(account.uid) + ") that hikyaku runs as; " +
                    chown_hint(account, data_dir));
}

Status drop_privileges(const Account& account) {
  // Sanity checks: dropping to root drops nothing.
  if (account.uid == 0 || account.gid == 0)
    return make_error("user '" + account.name + "' has uid or gid 0: running as it would keep root");
  // Groups first (setgroups needs root), then the gid, then the uid: after
  // setuid nothing else may be changed.
  if (::initgroups(account.name.c_str(), account.gid) != 0) return errno_error("initgroups", account.name, errno);
  if (::setgid(account.gid) != 0) return errno_error("setgid for", account.name, errno);
  if (::setuid(account.uid) != 0) return errno_error("setuid for", account.name, errno);
  // No later execve may gain privileges (set-user-ID programs, file
  // capabilities); hikyaku executes nothing, so this only closes a door.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno_error("prctl(PR_SET_NO_NEW_PRIVS) as", account.name, errno);

  // Verify: every id is the account's, and root cannot be regained.
  uid_t ruid = 0, euid = 0, suid = 0;
  gid_t rgid = 0, egid = 0, sgid = 0;
  if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0)
    return errno_error("getresuid as", account.name, errno);
  if (ruid != account.uid || euid != account.uid || suid != account.uid || rgid != account.gid ||
      egid != account.gid || sgid != account.gid)
    return make_error("after dropping to user '" + account.name + "' the process ids are not all theirs");
  if (::setuid(0) == 0 || ::seteuid(0) == 0 || ::setgid(0) == 0)
    return make_error("after dropping to user '" + account.name + "' root could be regained: refusing to run");
  return {};
}

}  // namespace hikyaku::base
