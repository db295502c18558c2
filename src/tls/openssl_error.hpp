// Purpose:   OpenSSL's queued error as text, for the tls component's
//            messages (internal to src/tls).
// Trust:     none; error strings name no key material.
// Concurrency: OpenSSL's error queue is per thread.
// Errors:    none: "unknown OpenSSL error" when the queue is empty.
#pragma once

#include <string>

#include <openssl/err.h>

namespace hikyaku::tls {

// The first queued error in words; the queue is cleared.
inline std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

}  // namespace hikyaku::tls
