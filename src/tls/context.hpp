// Purpose:   Build the OpenSSL server context from [tls] cert/key (TLS 1.2+,
//            Mozilla "intermediate" ciphers) and, for the demo, create a
//            self-signed certificate for the hostname.
// Standards: RFC 8996 (no TLS 1.0/1.1), RFC 7525 recommendations.
// Trust:     reads the private key file; never logs key material.
// Errors:    Result with the file name and OpenSSL's reason.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "base/result.hpp"

namespace hikyaku::tls {

base::Result<std::shared_ptr<boost::asio::ssl::context>> make_server_context(
    const std::filesystem::path& cert, const std::filesystem::path& key);

// Create `cert` and `key` (PEM, RSA 2048, 10 years) for `hostname` unless both
// exist already.
base::Status ensure_self_signed(const std::filesystem::path& cert, const std::filesystem::path& key,
                                const std::string& hostname);

}  // namespace hikyaku::tls
