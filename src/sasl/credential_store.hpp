// Purpose:   Mailbox logins: argon2id password hashes (libsodium
//            crypto_pwhash_str) stored in DATA_DIR/users, one "name:hash"
//            line per mailbox, rewritten atomically. Used by POP3, IMAP and
//            submission AUTH, and by `hikyaku user passwd|list|del`.
// Trust:     passwords are secrets: never logged, compared in constant time
//            by libsodium; the file is mode 0600.
// Concurrency: verify() is thread-safe and slow on purpose (argon2id, run
//            it off the event loop); the file is re-read when it changes.
// Errors:    Status/Result; a wrong password is `false`, not an error.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::sasl {

class CredentialStore {
 public:
  explicit CredentialStore(std::filesystem::path file);

  base::Status set_password(std::string_view user, std::string_view password);
  base::Status remove(std::string_view user);
  base::Result<std::vector<std::string>> users() const;
  // True only when the user exists and the password matches. Always one
  // argon2id verification, also for an unknown user (against a dummy hash
  // made on first need), so timing does not reveal which users exist.
  bool verify(std::string_view user, std::string_view password) const;

 private:
  std::filesystem::path file_;
  mutable std::once_flag dummy_once_;
  mutable std::string dummy_hash_;  // written once, under dummy_once_
};

}  // namespace hikyaku::sasl
