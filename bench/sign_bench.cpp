// Messages DKIM-signed + ARC-sealed per second by hikyaku's own code (issue 4
// benchmark), one thread, for RSA-2048 and Ed25519. Built and run by
// bench/sign.sh against the build tree's static libraries (no GoogleTest).
// Each iteration does what ForwardTransform does for one forward: one DKIM
// signature and one ARC set (AMS + AS: two more signatures) over a 4 KiB
// message, so 3 private-key operations per message.
#include <chrono>
#include <cstdio>
#include <string>

#include "auth/arc/sealer.hpp"
#include "auth/dkim/signer.hpp"
#include "crypto/key.hpp"

using namespace hikyaku;

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  std::string body;
  while (body.size() < 4096) body += "The quick brown fox jumps over the lazy dog, again and again.\r\n";
  std::string message = "From: Ann <ann@author.test>\r\nTo: owner@hk.test\r\nSubject: bench\r\n"
                        "Date: Tue, 14 Apr 2026 09:00:00 +0000\r\nMessage-ID: <b@author.test>\r\n\r\n" + body;
  const std::string results = "mx.hk.test; spf=pass smtp.mailfrom=ann@author.test; dkim=none; dmarc=pass; arc=none";
  for (auto type : {crypto::KeyType::rsa, crypto::KeyType::ed25519}) {
    auto key = crypto::generate_key(type).value();
    auth::dkim::SignOptions o;
    o.domain = "hk.test";
    o.selector = "hk1";
    auto now = std::chrono::system_clock::now();
    auto start = std::chrono::steady_clock::now();
    long n = 0;
    double elapsed = 0;
    do {
      auto sig = auth::dkim::sign(message, key, o, now);
      std::string signed_msg = sig.value() + message;
      auto set = auth::arc::seal(signed_msg, results, "hk.test", "hk1", key, now);
      if (!set.ok()) {
        std::fprintf(stderr, "seal failed: %s\n", set.error().message.c_str());
        return 1;
      }
      ++n;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < seconds);
    std::printf("%s %.1f\n", std::string(crypto::key_type_name(type)).c_str(), n / elapsed);
  }
  return 0;
}
