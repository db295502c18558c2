#include "sasl/credential_store.hpp"

#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "base/file.hpp"
#include "base/strings.hpp"

namespace hikyaku::sasl {
namespace {

struct Entry {
  std::string user;
  std::string hash;
};

// A user name is stored verbatim before the first ':' of its line, so it may
// contain neither ':' nor line breaks; control characters are refused too so
// that `user list` prints what the operator typed.
bool valid_user(std::string_view user) {
  if (user.empty() || user.size() > 255) return false;
  for (char c : user) {
    auto u = static_cast<unsigned char>(c);
    if (c == ':' || u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

// Parse the file; a missing file is an empty store. Malformed lines (no ':')
// are skipped, not fatal: one bad line must not lock every user out.
base::Result<std::vector<Entry>> load(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    if (ec) return base::make_error("stat " + file.string() + ": " + ec.message());
    return std::vector<Entry>{};
  }
  auto text = base::read_file(file);
  if (!text) return text.error();
  std::vector<Entry> out;
  for (auto line : base::split(*text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    out.push_back(Entry{std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
  }
  return out;
}

// Rewrite the whole file atomically: tmp (O_EXCL, 0600) → fsync → rename.
base::Status store(const std::filesystem::path& file, const std::vector<Entry>& entries) {
  std::string text;
  for (const auto& e : entries) text += e.user + ":" + e.hash + "\n";
  if (auto st = base::ensure_directory(file.parent_path()); !st) return st;
  // A random suffix keeps two concurrent `user passwd` runs from colliding on
  // the O_EXCL temporary name; the last rename wins as a whole file.
  unsigned char rnd[8];
  randombytes_buf(rnd, sizeof rnd);
  std::string suffix = ".tmp.";
  for (unsigned char b : rnd) {
    static constexpr char kHex[] = "0123456789abcdef";
    suffix += kHex[b >> 4];
    suffix += kHex[b & 15];
  }
  auto tmp = file;
  tmp += suffix;
  return base::write_file_durable(tmp, file, text);
}

}  // namespace

CredentialStore::CredentialStore(std::filesystem::path file) : file_(std::move(file)) {
  // sodium_init() is idempotent and thread-safe; -1 means no usable RNG,
  // which would make every hash unsafe.
  HIKYAKU_CHECK(sodium_init() >= 0);
}

base::Status CredentialStore::set_password(std::string_view user, std::string_view password) {
  if (!valid_user(user)) return base::make_error("invalid user name");
  if (password.empty()) return base::make_error("empty password");
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return base::make_error("argon2id hashing failed (out of memory)");
  }
  auto entries = load(file_);
  if (!entries) return entries.error();
  bool replaced = false;
  for (auto& e : *entries) {
    if (e.user == user) {
      e.hash = hash;
      replaced = true;
    }
  }
  if (!replaced) entries->push_back(Entry{std::string(user), hash});
  sodium_memzero(hash, sizeof hash);
  return store(file_, *entries);
}

base::Status CredentialStore::remove(std::string_view user) {
  auto entries = load(file_);
  if (!entries) return entries.error();
  std::vector<Entry> kept;
  bool found = false;
  for (auto& e : *entries) {
    if (e.user == user) {
      found = true;
    } else {
      kept.push_back(std::move(e));
    }
  }
  if (!found) return base::make_error("no such user: " + std::string(user));
  return store(file_, kept);
}

base::Result<std::vector<std::string>> CredentialStore::users() const {
  auto entries = load(file_);
  if (!entries) return entries.error();
  std::vector<std::string> out;
  for (auto& e : *entries) out.push_back(std::move(e.user));
  return out;
}

bool CredentialStore::verify(std::string_view user, std::string_view password) const {
  // Re-read on every call: the file is tiny next to the cost of argon2id, and
  // this keeps `hikyaku user passwd` effective at once without a cache (and
  // without a lock: verify() is called from several worker threads).
  auto entries = load(file_);
  if (!entries) return false;
  const Entry* found = nullptr;
  for (const auto& e : *entries) {
    if (e.user == user) found = &e;
  }
  if (found == nullptr || found->hash.size() >= crypto_pwhash_STRBYTES) {
    // The same argon2id work as for a known user, so the answer's timing
    // does not tell which login names exist.
    std::call_once(dummy_once_, [this] {
      char hash[crypto_pwhash_STRBYTES];
      static constexpr char kDummy[] = "hikyaku: no such user";
      if (crypto_pwhash_str(hash, kDummy, sizeof kDummy - 1, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0) {
        dummy_hash_ = hash;
      }
    });
    if (!dummy_hash_.empty()) {
      const int wasted = crypto_pwhash_str_verify(dummy_hash_.c_str(), password.data(), password.size());
      static_cast<void>(wasted);
    }
    return false;
  }
  return crypto_pwhash_str_verify(found->hash.c_str(), password.data(), password.size()) == 0;
}

}  // namespace hikyaku::sasl
