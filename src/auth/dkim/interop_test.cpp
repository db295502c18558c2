// Interoperability with dkimpy (Debian python3-dkim, an independent
// implementation): our signer → dkimpy verifies; dkimpy signs → we verify;
// our ARC seal → dkim.arc_verify says cv=pass; body hashes (bh=) agree on a
// corpus of awkward messages. Always run as /usr/bin/python3 (Debian modules).
// Our signing, sealing and verifying also run from the header section with
// precomputed body hashes and must agree (body_hashes_for_test.hpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "auth/arc/sealer.hpp"
#include "auth/arc/validator.hpp"
#include "auth/body_hashes_for_test.hpp"
#include "auth/common/authentication_results.hpp"
#include "auth/common/canonicalization.hpp"
#include "auth/common/message.hpp"
#include "auth/common/tag_list.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/dkim/verifier.hpp"
#include "base/strings.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::auth::dkim {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

const char* kScript = R"PY(
import sys, dkim, re
mode = sys.argv[1]
msg = open(sys.argv[2], 'rb').read()
if mode in ('verify', 'arcverify'):
    rec = open(sys.argv[3], 'rb').read().strip()
    def f(name, timeout=5):
        return rec
    if mode == 'verify':
        print('PASS' if dkim.verify(msg, dnsfunc=f, minkey=1024) else 'FAIL')
    else:
        cv, results, comment = dkim.arc_verify(msg, dnsfunc=f)
        print(cv.decode(), comment)
elif mode == 'sign':
    key = open(sys.argv[3], 'rb').read()
    alg = sys.argv[4].encode()
    canon = tuple(x.encode() for x in sys.argv[5].split('/'))
    sig = dkim.sign(msg, b'sel', b'example.com', key, signature_algorithm=alg, canonicalize=canon,
                    include_headers=[b'from', b'to', b'subject', b'date'])
    sys.stdout.buffer.write(sig + msg)
)PY";

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/hikyaku-dkim-interop-XXXXXX";
    int fd = mkstemp(tmpl);
    HIKYAKU_CHECK(fd >= 0);
    path_ = tmpl;
    size_t off = 0;
    while (off < content.size()) {
      ssize_t n = ::write(fd, content.data() + off, content.size() - off);
      HIKYAKU_CHECK(n > 0);
      off += size_t(n);
    }
    ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read(const std::string& rel) {
  std::ifstream in(std::string(HIKYAKU_TESTDATA_DIR) + "/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim_nl(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

bool have_dkimpy() {
  return std::system("/usr/bin/python3 -c 'import dkim' >/dev/null 2>&1") == 0;
}

// Run the helper script; stdout as bytes.
std::string python(const std::vector<std::string>& args) {
  TempFile script(kScript);
  std::string cmd = std::string(kPython) + " " + script.path();
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>/dev/null";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

struct CorpusMessage {
  const char* name;
  std::string text;  // CRLF
};

std::vector<CorpusMessage> corpus() {
  std::string long_line(1800, 'x');
  return {
      {"folded_headers",
       "From: Joe Q. Public\r\n <joe@example.com>\r\nTo: a@example.org,\r\n\tb@example.org\r\nSubject: a\r\n  long\r\n\t"
       "folded subject\r\nDate: Mon, 23 Nov 2026 00:00:00 +0000\r\n\r\nHello.\r\n"},
      {"trailing_whitespace",
       "From: joe@example.com  \r\nTo:   a@example.org\t\r\nSubject:  spaced   out  \r\n\r\nline with trailing "
       "  \r\n\ttabbed\t line\t\r\n  \r\n\r\n\r\n"},
      {"empty_body", "From: joe@example.com\r\nTo: a@example.org\r\nSubject: empty\r\n\r\n"},
      {"no_body_separator", "From: joe@example.com\r\nTo: a@example.org\r\nSubject: nothing\r\n"},
      {"eight_bit",
       "From: =?utf-8?q?J=C3=B6e?= <joe@example.com>\r\nTo: a@example.org\r\nSubject: \xe6\x97\xa5\xe6\x9c\xac "
       "\xc3\xa9t\xc3\xa9\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
       "\xe9\xa3\x9b\xe8\x84\x9a\xe3\x81\xa7\xe3\x81\x99\r\nlatin1 \xe9\xe8\r\n"},
      {"very_long_lines",
       "From: joe@example.com\r\nTo: a@example.org\r\nSubject: long\r\n\r\n" + long_line + "\r\n" + long_line +
           "   \r\nend"},
      {"body_without_final_crlf", "From: joe@example.com\r\nSubject: x\r\n\r\nno newline at end"},
      {"repeated_headers",
       "From: joe@example.com\r\nTo: a@example.org\r\nTo: b@example.org\r\nSubject: one\r\nSubject: two\r\n\r\n"
       "body\r\n\r\n"},
  };
}

struct KeyCase {
  const char* name;
  const char* key_file;  // dkim-dkimpy
  const char* record;    // record text, or file in dkim-dkimpy
  const char* algorithm;
};

const KeyCase kKeys[] = {
    {"rsa2048", "2048_testkey.key", "2048_testkey_wo_markers.pub.txt", "rsa-sha256"},
    {"ed25519", "ed25519test.key", "ed25519test.dns", "ed25519-sha256"},
};

std::string record_for(const KeyCase& k) {
  std::string rec = trim_nl(read(std::string("dkim-dkimpy/") + k.record));
  if (rec.rfind("v=", 0) != 0) rec = "v=DKIM1; " + rec;
  return rec;
}

VerifyOptions now_opts() { return VerifyOptions{}; }

TEST(DkimInterop, Rfc6376OurSignatureVerifiesWithDkimpy) {
  if (!have_dkimpy()) GTEST_SKIP() << "python3-dkim not installed";
  for (const auto& k : kKeys) {
    auto key = crypto::load_private_key(read(std::string("dkim-dkimpy/") + k.key_file));
    ASSERT_TRUE(key.ok()) << k.name << ": " << key.error().message;
    TempFile rec(record_for(k));
    for (const auto& m : corpus()) {
      SignOptions so{"example.com", "sel"};
      auto sig = test_support::sign_both(m.text, *key, so, std::chrono::system_clock::now());
      ASSERT_TRUE(sig.ok()) << m.name;
      TempFile msg(*sig + m.text);
      EXPECT_EQ(trim_nl(python({"verify", msg.path(), rec.path()})), "PASS") << k.name << "/" << m.name;
      // And our own verifier agrees.
      dns::FakeResolver r;
      r.add_txt("sel._domainkey.example.com", record_for(k));
      auto ours = test_support::verify_both(*sig + m.text, r, now_opts());
      ASSERT_EQ(ours.size(), 1u) << k.name << "/" << m.name;
      EXPECT_EQ(ours[0].status, Status::pass) << k.name << "/" << m.name;
    }
  }
}

TEST(DkimInterop, Rfc6376DkimpySignatureVerifiesWithUs) {
  if (!have_dkimpy()) GTEST_SKIP() << "python3-dkim not installed";
  for (const auto& k : kKeys) {
    TempFile key(read(std::string("dkim-dkimpy/") + k.key_file));
    dns::FakeResolver r;
    r.add_txt("sel._domainkey.example.com", record_for(k));
    for (const char* canon : {"relaxed/relaxed", "simple/simple", "relaxed/simple"}) {
      for (const auto& m : corpus()) {
        TempFile msg(m.text);
        std::string signed_msg = python({"sign", msg.path(), key.path(), k.algorithm, canon});
        ASSERT_FALSE(signed_msg.empty()) << k.name << "/" << m.name;
        auto res = test_support::verify_both(common::to_crlf(signed_msg), r, now_opts());
        ASSERT_EQ(res.size(), 1u);
        EXPECT_EQ(res[0].status, Status::pass) << k.name << "/" << canon << "/" << m.name << ": " << res[0].detail;
        // RFC 6376 §3.4: our canonical body hashes equal dkimpy's bh=.
        auto parsed = common::parse_message(m.text);
        auto pair = common::parse_canonicalization(canon);
        common::BodyHasher bh(pair->body, crypto::HashAlgorithm::sha256);
        bh.update(parsed.body);
        const std::string signed_crlf = common::to_crlf(signed_msg);
        auto sig_field = common::parse_message(signed_crlf).headers[0];  // views into signed_crlf
        auto tags = common::parse_tag_list(sig_field.value);
        ASSERT_TRUE(tags.ok()) << m.name << ": " << tags.error().message << "\n" << sig_field.raw;
        EXPECT_EQ(base::base64_encode(bh.finish()), common::strip_whitespace(*tags->find("bh")))
            << canon << "/" << m.name;
      }
    }
  }
}

TEST(DkimInterop, Rfc8617OurArcSealVerifiesWithDkimpy) {
  if (!have_dkimpy()) GTEST_SKIP() << "python3-dkim not installed";
  for (const auto& k : kKeys) {
    auto key = crypto::load_private_key(read(std::string("dkim-dkimpy/") + k.key_file));
    ASSERT_TRUE(key.ok());
    TempFile rec(record_for(k));
    dns::FakeResolver r;
    r.add_txt("sel._domainkey.example.com", record_for(k));
    for (const auto& m : corpus()) {
      // Hop 1.
      common::AuthenticationResults ar{"mx.example.com", {}};
      ar.add("spf", "pass", {{"smtp.mailfrom", "joe@example.com"}}).add("dkim", "none").add("arc", "none");
      auto set1 =
          test_support::seal_both(m.text, ar.value(), "example.com", "sel", *key, std::chrono::system_clock::now());
      ASSERT_TRUE(set1.ok()) << set1.error().message;
      std::string hop1 = set1->prefix() + m.text;
      TempFile f1(hop1);
      // dkimpy 1.1.4's ARC code knows rsa-sha256 only ("unknown signature
      // algorithm: ed25519-sha256"): Ed25519 seals are checked by us alone.
      bool dkimpy_can = std::string(k.algorithm) == "rsa-sha256";
      std::string out = dkimpy_can ? python({"arcverify", f1.path(), rec.path()}) : "pass";
      EXPECT_EQ(out.substr(0, 4), "pass") << k.name << "/" << m.name << ": " << out;
      auto v1 = test_support::validate_both(hop1, r, now_opts());
      EXPECT_EQ(v1.status, arc::ChainStatus::pass) << v1.reason;
      // Hop 2 extends the chain with cv=pass.
      common::AuthenticationResults ar2{"relay.example.net", {}};
      ar2.add("arc", "pass", {{"header.oldest-pass", "1"}});
      auto set2 =
          test_support::seal_both(hop1, ar2.value(), "example.com", "sel", *key, std::chrono::system_clock::now());
      ASSERT_TRUE(set2.ok()) << set2.error().message;
      EXPECT_EQ(set2->instance, 2);
      std::string hop2 = set2->prefix() + hop1;
      TempFile f2(hop2);
      out = dkimpy_can ? python({"arcverify", f2.path(), rec.path()}) : "pass";
      EXPECT_EQ(out.substr(0, 4), "pass") << k.name << "/" << m.name << " hop 2: " << out;
      auto v2 = test_support::validate_both(hop2, r, now_opts());
      EXPECT_EQ(v2.status, arc::ChainStatus::pass) << v2.reason;
      EXPECT_EQ(v2.oldest_pass, 1);
    }
  }
}

}  // namespace
}  // namespace hikyaku::auth::dkim
