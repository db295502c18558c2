#include "tls/server_certificates.hpp"

#include <ctime>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/log.hpp"
#include "tls/context.hpp"
#include "tls/openssl_error.hpp"
#include "tls/server_name.hpp"

namespace hikyaku::tls {
namespace ssl = boost::asio::ssl;

namespace {

using CtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

// The server policy (docs/tls.md), on the outer context (the SSL objects
// take protocol versions, options and TLS 1.2 ciphers from it when they are
// made) and on each certificate's own (so that nothing differs whichever a
// connection ends on).
void apply_policy(SSL_CTX* native) {
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);  // RFC 8996
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_cipher_list(native,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
}

// Did the last OpenSSL failure say the key is not the certificate's?
// (SSL_CTX_use_PrivateKey_file checks the pair itself: X509_check_private_key.)
bool key_values_mismatch() {
  const unsigned long e = ERR_peek_last_error();
  return ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
}

std::string at(const std::string& origin, const std::string& message) {
  return origin.empty() ? message : origin + ": " + message;
}

std::string asn1_text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}

// The DNS names SNI may choose the certificate by: subjectAltName dNSName
// entries, or the subject's CN when there are none (RFC 6125 §6.4.4).
// Names with an embedded NUL are skipped (a classic forgery).
std::vector<std::string> dns_names(X509* x509) {
  std::vector<std::string> out;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x509, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gen = sk_GENERAL_NAME_value(sans, i);
      if (gen->type != GEN_DNS) continue;
      std::string name = asn1_text(gen->d.dNSName);
      if (!name.empty() && name.find('\0') == std::string::npos) out.push_back(std::move(name));
    }
    GENERAL_NAMES_free(sans);
  }
  if (!out.empty()) return out;
  const X509_NAME* subject = X509_get_subject_name(x509);
  const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    std::string cn = asn1_text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
    if (!cn.empty() && cn.find('\0') == std::string::npos) out.push_back(std::move(cn));
  }
  return out;
}

std::string subject_text(X509* x509) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(x509), 0, XN_FLAG_RFC2253) < 0) return "?";
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : "";
}

std::string not_after_text(X509* x509) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(x509), &tm) != 1) return "?";
  char buf[32];
  return std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0 ? buf : "?";
}

}  // namespace

struct ServerCertificates::Set {
  struct Entry {
    CtxPtr ctx{nullptr, SSL_CTX_free};
    CertificateInfo info;
  };
  std::vector<Entry> entries;                    // [0]: the default
  std::vector<std::vector<std::string>> names;   // entries[i].info.names, for choose_certificate
};

namespace {

// One certificate's own SSL_CTX: the policy, the chain, the key (its mode
// checked first, then that it matches).
base::Result<ServerCertificates::Set::Entry> load_entry(const CertificateFiles& f, bool needs_names) {
  ServerCertificates::Set::Entry entry;
  entry.ctx.reset(SSL_CTX_new(TLS_server_method()));
  if (!entry.ctx) return base::make_error("TLS: " + openssl_error());
  SSL_CTX* native = entry.ctx.get();
  apply_policy(native);
  auto mode = check_key_file_mode(f.key);
  if (!mode.ok()) return base::make_error(at(f.key_origin, mode.error().message));
  if (!mode->warning.empty()) base::logger("tls")->warn("{}", at(f.key_origin, mode->warning));
  if (SSL_CTX_use_certificate_chain_file(native, f.cert.c_str()) != 1)
    return base::make_error(at(f.cert_origin, "TLS certificate " + f.cert.string() + ": " + openssl_error()));
  const std::string mismatch =
      at(f.key_origin, "TLS key " + f.key.string() + " does not match the certificate " + f.cert.string());
  if (SSL_CTX_use_PrivateKey_file(native, f.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (key_values_mismatch()) {
      ERR_clear_error();
      return base::make_error(mismatch);
    }
    return base::make_error(at(f.key_origin, "TLS key " + f.key.string() + ": " + openssl_error()));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return base::make_error(mismatch);
  }
  X509* leaf = SSL_CTX_get0_certificate(native);
  entry.info.cert = f.cert;
  entry.info.subject = subject_text(leaf);
  entry.info.not_after = not_after_text(leaf);
  entry.info.names = dns_names(leaf);
  if (needs_names && entry.info.names.empty())
    return base::make_error(at(f.cert_origin, "TLS certificate " + f.cert.string() +
                                                  " names no DNS host (no subjectAltName DNS name, no CN): "
                                                  "no client's server name could choose it"));
  return entry;
}

base::Result<std::shared_ptr<const ServerCertificates::Set>> load_set(const std::vector<CertificateFiles>& files) {
  auto set = std::make_shared<ServerCertificates::Set>();
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto entry = load_entry(files[i], i > 0);
    if (!entry.ok()) return entry.error();
    set->names.push_back(entry->info.names);
    set->entries.push_back(std::move(entry).value());
  }
  return std::shared_ptr<const ServerCertificates::Set>(std::move(set));
}

}  // namespace

std::string CertificateInfo::str() const {
  std::string out = cert.string() + ": subject " + subject + ", names ";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  if (names.empty()) out += "(none)";
  return out + ", not after " + not_after;
}

ServerCertificates::ServerCertificates(std::vector<CertificateFiles> files)
    : files_(std::move(files)), outer_(ssl::context::tls_server) {
  // No certificate of its own: the servername callback, which OpenSSL runs
  // for every ClientHello (with or without the extension), always moves the
  // connection to one of the set's contexts before a certificate is needed.
  apply_policy(outer_.native_handle());
  SSL_CTX_set_tlsext_servername_callback(outer_.native_handle(), &ServerCertificates::on_server_name);
  SSL_CTX_set_tlsext_servername_arg(outer_.native_handle(), this);
}

ServerCertificates::~ServerCertificates() = default;

base::Result<std::shared_ptr<ServerCertificates>> ServerCertificates::create(std::vector<CertificateFiles> files) {
  if (files.empty()) return base::make_error("TLS: no certificate configured");
  auto set = load_set(files);
  if (!set.ok()) return set.error();
  std::shared_ptr<ServerCertificates> out(new ServerCertificates(std::move(files)));
  out->set_ = std::move(set).value();
  return out;
}

std::shared_ptr<ssl::context> ServerCertificates::context() {
  // Aliasing: whoever holds the context holds this object, which the
  // servername callback's argument points to.
  return {shared_from_this(), &outer_};
}

std::shared_ptr<const ServerCertificates::Set> ServerCertificates::current() const {
  std::lock_guard lock(mutex_);
  return set_;
}

base::Result<std::vector<CertificateInfo>> ServerCertificates::reload() {
  // Build the whole new set before touching the old one.
  auto set = load_set(files_);
  if (!set.ok()) return set.error();
  {
    std::lock_guard lock(mutex_);
    set_ = *set;  // the old set goes when the last handshake copying it ends
  }
  return loaded();
}

std::vector<CertificateInfo> ServerCertificates::loaded() const {
  std::vector<CertificateInfo> out;
  for (const auto& e : current()->entries) out.push_back(e.info);
  return out;
}

int ServerCertificates::on_server_name(SSL* ssl, int* /*alert*/, void* arg) {
  // RFC 6066 §3: the client's host_name, if any; no match (or no name)
  // gets the default, the first entry.
  const auto set = static_cast<const ServerCertificates*>(arg)->current();
  std::size_t chosen = 0;
  if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))
    chosen = choose_certificate(set->names, name).value_or(0);
  // SSL_set_SSL_CTX takes its own reference to the chosen SSL_CTX: the
  // connection keeps it after a reload drops `set`.
  if (SSL_set_SSL_CTX(ssl, set->entries[chosen].ctx.get()) == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  return SSL_TLSEXT_ERR_OK;
}

base::Result<std::shared_ptr<ssl::context>> make_server_context(const std::filesystem::path& cert,
                                                                const std::filesystem::path& key) {
  auto certificates = ServerCertificates::create({CertificateFiles{cert, key, "", ""}});
  if (!certificates.ok()) return certificates.error();
  return (*certificates)->context();
}

}  // namespace hikyaku::tls
