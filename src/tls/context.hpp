// Purpose:   The server's TLS policy, the key file check, and, for the
//            demo, a self-signed certificate for the hostname. Contexts are
//            built by tls/server_certificates.hpp (several certificates by
//            SNI, reload) with TLS 1.2+ and Mozilla "intermediate" ciphers. The server's TLS
//            policy, stated once (docs/tls.md):
//            * TLS 1.2 is the floor on every listener (SMTP STARTTLS,
//              POP3 STLS, POP3S, IMAP STARTTLS, IMAPS): a TLS 1.0/1.1 client
//              gets a protocol_version alert, whatever openssl.cnf says;
//            * a key that does not match the certificate stops start-up with
//              a message naming both files;
//            * the key file's mode: any access for "other" (world) stops
//              start-up — the key is already disclosed to every local user;
//              group access is logged as a warning and allowed (Debian's
//              ssl-cert group convention: 0640 root:ssl-cert).
// Standards: RFC 8996 (no TLS 1.0/1.1), RFC 7525 recommendations.
// Trust:     reads the private key file; never logs key material.
// Errors:    Result with the file name(s) and OpenSSL's reason.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "base/result.hpp"

namespace hikyaku::tls {

// A context serving one certificate (tests; the server uses
// tls/server_certificates.hpp, which this is built on).
base::Result<std::shared_ptr<boost::asio::ssl::context>> make_server_context(
    const std::filesystem::path& cert, const std::filesystem::path& key);

// The key file's permission check on its own (make_server_context runs it
// first): an error for any "other" permission bit, a warning text (else
// empty) for group bits. Follows symbolic links (Let's Encrypt's live/).
struct KeyFileCheck {
  std::string warning;
};
base::Result<KeyFileCheck> check_key_file_mode(const std::filesystem::path& key);

// Create `cert` and `key` (PEM, RSA 2048, 10 years) for `hostname` unless both
// exist already.
base::Status ensure_self_signed(const std::filesystem::path& cert, const std::filesystem::path& key,
                                const std::string& hostname);

}  // namespace hikyaku::tls
