#include "tls/context.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/file.hpp"
#include "tls/openssl_error.hpp"

namespace hikyaku::tls {
namespace {

std::string octal_mode(mode_t mode) {
  char buf[8];
  (void)std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

base::Result<KeyFileCheck> check_key_file_mode(const std::filesystem::path& key) {
  // Postfix's documentation asks for a key readable by root only but does
  // not check; OpenSMTPD refuses any group or other bit. We refuse "other"
  // (a key every local user can read is disclosed) and only warn about
  // "group", which Debian's ssl-cert group (0640 root:ssl-cert) relies on.
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0) return base::make_error("TLS key " + key.string() + ": cannot stat the file");
  KeyFileCheck out;
  if ((st.st_mode & S_IRWXO) != 0)
    return base::make_error("TLS key " + key.string() + " has mode " + octal_mode(st.st_mode) +
                            ": other users may access it; refusing to use it (chmod 600 or 640)");
  if ((st.st_mode & S_IRWXG) != 0)
    out.warning = "TLS key " + key.string() + " has mode " + octal_mode(st.st_mode) +
                  ": its group may read it (fine for a group such as ssl-cert that is meant to; else chmod 600)";
  return out;
}

base::Status ensure_self_signed(const std::filesystem::path& cert, const std::filesystem::path& key,
                                const std::string& hostname) {
  std::error_code ec;
  if (std::filesystem::exists(cert, ec) && std::filesystem::exists(key, ec)) return {};
  if (auto st = base::ensure_directory(cert.parent_path()); !st) return st;

  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(EVP_RSA_gen(2048), EVP_PKEY_free);
  if (!pkey) return base::make_error("generate TLS key: " + openssl_error());
  std::unique_ptr<X509, decltype(&X509_free)> x509(X509_new(), X509_free);
  X509_set_version(x509.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), static_cast<long>(std::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(x509.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x509.get()), 10L * 365 * 86400);
  X509_set_pubkey(x509.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(x509.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1, 0);
  X509_set_issuer_name(x509.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x509.get(), x509.get(), nullptr, nullptr, 0);
  std::string san = "DNS:" + hostname;
  if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str())) {
    X509_add_ext(x509.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x509.get(), pkey.get(), EVP_sha256()) == 0)
    return base::make_error("sign TLS certificate: " + openssl_error());

  auto write_pem = [](const std::filesystem::path& path, auto writer) -> base::Status {
    FILE* f = std::fopen(path.c_str(), "wx");
    if (f == nullptr) return base::make_error("cannot create " + path.string());
    bool ok = writer(f);
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) return base::make_error("cannot write " + path.string());
    return {};
  };
  std::filesystem::remove(key, ec);
  std::filesystem::remove(cert, ec);
  if (auto st = write_pem(key, [&](FILE* f) {
        return PEM_write_PrivateKey(f, pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
      });
      !st)
    return st;
  std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  return write_pem(cert, [&](FILE* f) { return PEM_write_X509(f, x509.get()) == 1; });
}

}  // namespace hikyaku::tls
