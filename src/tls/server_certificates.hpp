// Purpose:   The server's certificates: a default one and any number more,
//            chosen per connection by the client's server name (SNI), and
//            re-read from their files on request (SIGHUP) without
//            disturbing connections in progress. docs/tls.md states the
//            rules.
//            * Which names a certificate serves comes from the certificate:
//              its subjectAltName DNS names (the subject CN only when it has
//              none, RFC 6125 §6.4.4); tls/server_name.hpp chooses.
//            * Every connection's SSL object is made from one outer context
//              that never changes (the sessions share it) and carries the
//              policy and the servername callback. The callback moves the
//              connection to the chosen certificate's own SSL_CTX
//              (SSL_set_SSL_CTX, which takes a reference: the connection
//              keeps that SSL_CTX alive however many reloads follow).
//            * reload() builds a complete new set first and swaps it in only
//              when every file loaded: a bad file keeps the old set whole.
// Standards: RFC 6066 §3 (server_name), RFC 6125 §6.4, RFC 8996.
// Trust:     reads private key files (their mode is checked first:
//            tls/context.hpp); never logs key material. The server name is
//            the peer's and only compared.
// Concurrency: the servername callback runs inside handshakes, on whatever
//            thread drives them; reload() may run on another. The current
//            set is a shared_ptr swapped under a mutex held only to copy or
//            replace the pointer.
// Errors:    Result with the file name (and the configuration position
//            that names it, when known) and OpenSSL's reason.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "base/result.hpp"

namespace hikyaku::tls {

// One certificate chain and its key. `*_origin` is where the configuration
// names the file ("hikyaku.toml:12:8"), put before error messages; empty
// for files that no configuration names (the self-signed demo pair).
struct CertificateFiles {
  std::filesystem::path cert;
  std::filesystem::path key;
  std::string cert_origin;
  std::string key_origin;
};

// What a loaded certificate is, for the log.
struct CertificateInfo {
  std::filesystem::path cert;
  std::string subject;             // RFC 2253: "CN=mail.example.com"
  std::string not_after;           // "2027-03-01T12:00:00Z"
  std::vector<std::string> names;  // what SNI matches against
  std::string str() const;         // "CERT: subject ..., names ..., not after ..."
};

class ServerCertificates : public std::enable_shared_from_this<ServerCertificates> {
 public:
  // Load every pair; `files` is not empty, and files[0] is the default (a
  // client without SNI, or naming no certificate, gets it). Warnings (a
  // group-readable key) are logged.
  static base::Result<std::shared_ptr<ServerCertificates>> create(std::vector<CertificateFiles> files);
  ~ServerCertificates();
  ServerCertificates(const ServerCertificates&) = delete;
  ServerCertificates& operator=(const ServerCertificates&) = delete;

  // The context every server Stream makes its SSL objects from. It shares
  // ownership of this object (the servername callback points here).
  std::shared_ptr<boost::asio::ssl::context> context();
  // Re-read every file; on success the new certificates serve every later
  // handshake and their descriptions are returned; on error nothing changes.
  base::Result<std::vector<CertificateInfo>> reload();
  // The certificates serving now.
  std::vector<CertificateInfo> loaded() const;

  struct Set;  // the loaded SSL_CTXs (server_certificates.cpp)

 private:
  explicit ServerCertificates(std::vector<CertificateFiles> files);
  std::shared_ptr<const Set> current() const;
  static int on_server_name(SSL* ssl, int* alert, void* arg);

  const std::vector<CertificateFiles> files_;
  boost::asio::ssl::context outer_;
  mutable std::mutex mutex_;        // guards set_ (the pointer, not the Set)
  std::shared_ptr<const Set> set_;  // never null after create()
};

}  // namespace hikyaku::tls
