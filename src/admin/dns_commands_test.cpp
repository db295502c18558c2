// dkim_keygen and dns_records against a temporary data_dir.
#include "admin/dns_commands.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "base/file.hpp"
#include "crypto/key.hpp"

namespace hikyaku::admin {
namespace {

namespace fs = std::filesystem;

// The character-strings of the first line starting with `marker`, unquoted
// (RFC 1035 §5.1), and the strings' sizes in `sizes`.
std::string txt_of_line(const std::string& output, const std::string& marker, std::vector<size_t>* sizes = nullptr) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(marker) || line.find("IN TXT") == std::string::npos) continue;
    std::string value;
    bool quoted = false;
    size_t current = 0;
    for (size_t i = line.find("IN TXT"); i < line.size(); ++i) {
      char c = line[i];
      if (!quoted) {
        if (c == '"') {
          quoted = true;
          current = 0;
        }
      } else if (c == '\\' && i + 1 < line.size()) {
        value += line[++i];
        ++current;
      } else if (c == '"') {
        quoted = false;
        if (sizes) sizes->push_back(current);
      } else {
        value += c;
        ++current;
      }
    }
    return value;
  }
  return "";
}

class DnsCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hikyaku-dns-commands-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_.source = dir_ / "hikyaku.toml";
    config_.hostname = "mx.example.test";
    config_.data_dir = dir_ / "data";
    config_.domains.push_back({"example.test", "", "", true});
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  int keygen(const std::string& domain, const std::string& selector, const std::string& algo) {
    out_.str("");
    err_.str("");
    return dkim_keygen(config_, domain, selector, algo, out_, err_);
  }

  fs::path dir_;
  config::Config config_;
  std::ostringstream out_, err_;
};

TEST_F(DnsCommandsTest, KeygenRsaWritesKeyAndPrintsRecord_RFC6376_3_6_1) {
  ASSERT_EQ(keygen("example.test", "sel", "rsa"), 0) << err_.str();
  fs::path file = config_.data_dir / "keys" / "example.test.sel.pem";
  ASSERT_TRUE(fs::exists(file));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto pem = base::read_file(file);
  ASSERT_TRUE(pem.ok());
  EXPECT_NE(pem->find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  auto key = crypto::load_private_key(*pem);
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->type(), crypto::KeyType::rsa);
  EXPECT_EQ(key->bits(), 2048u);  // RFC 8301 §3.2

  std::vector<size_t> sizes;
  std::string out = out_.str();
  EXPECT_NE(out.find("sel._domainkey.example.test. IN TXT \""), std::string::npos) << out;
  std::string txt = txt_of_line(out, "sel._domainkey.example.test.", &sizes);
  EXPECT_EQ(txt, "v=DKIM1; k=rsa; p=" + key->public_key().dkim_p());
  ASSERT_GE(sizes.size(), 2u) << "an RSA 2048 record exceeds one 255-octet string";
  for (size_t s : sizes) EXPECT_LE(s, 255u);
  EXPECT_NE(out.find("dkim_selector = \"sel\"\n"), std::string::npos) << out;
  EXPECT_NE(out.find("dkim_key = \"" + file.string() + "\"\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("BEGIN PRIVATE KEY"), std::string::npos) << "the private key must not be printed";
}

TEST_F(DnsCommandsTest, KeygenEd25519_RFC8463_4) {
  ASSERT_EQ(keygen("Example.Test.", "ed", "ed25519"), 0) << err_.str();
  fs::path file = config_.data_dir / "keys" / "example.test.ed.pem";
  auto key = crypto::load_private_key(*base::read_file(file));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->type(), crypto::KeyType::ed25519);
  std::string txt = txt_of_line(out_.str(), "ed._domainkey.example.test.");
  EXPECT_EQ(txt, "v=DKIM1; k=ed25519; p=" + key->public_key().dkim_p());
  EXPECT_EQ(key->public_key().dkim_p().size(), 44u);  // base64 of 32 bytes
}

TEST_F(DnsCommandsTest, KeygenRefusesToOverwrite) {
  ASSERT_EQ(keygen("example.test", "sel", "ed25519"), 0) << err_.str();
  fs::path file = config_.data_dir / "keys" / "example.test.sel.pem";
  auto before = base::read_file(file);
  EXPECT_EQ(keygen("example.test", "sel", "ed25519"), 1);
  EXPECT_NE(err_.str().find("already exists"), std::string::npos) << err_.str();
  EXPECT_EQ(*base::read_file(file), *before);
}

TEST_F(DnsCommandsTest, KeygenUsageErrors) {
  struct Case {
    const char* name;
    const char* domain;
    const char* selector;
    const char* algo;
  };
  const Case cases[] = {
      {"unknown algorithm", "example.test", "sel", "dsa"},
      {"selector with a slash", "example.test", "../sel", "rsa"},
      {"empty selector", "example.test", "", "rsa"},
      {"domain with a slash", "a/b.test", "sel", "rsa"},
      {"empty label", "example..test", "sel", "rsa"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(keygen(c.domain, c.selector, c.algo), 2) << c.name;
    EXPECT_FALSE(err_.str().empty()) << c.name;
  }
  EXPECT_FALSE(fs::exists(config_.data_dir / "keys")) << "nothing written on usage errors";
}

TEST_F(DnsCommandsTest, KeygenForUnconfiguredDomainSaysSo) {
  ASSERT_EQ(keygen("other.test", "s1", "ed25519"), 0) << err_.str();
  EXPECT_NE(out_.str().find("[[domain]]\nname = \"other.test\"\n"), std::string::npos) << out_.str();
}

TEST_F(DnsCommandsTest, DnsRecordsForEveryDomain) {
  ASSERT_EQ(keygen("example.test", "hk1", "rsa"), 0) << err_.str();
  config_.domains[0].dkim_selector = "hk1";
  config_.domains[0].dkim_key = config_.data_dir / "keys" / "example.test.hk1.pem";
  config_.domains.push_back({"second.test", "", "", true});
  auto key = crypto::load_private_key(*base::read_file(config_.domains[0].dkim_key));
  ASSERT_TRUE(key.ok());

  std::ostringstream out, err;
  ASSERT_EQ(dns_records(config_, out, err), 0) << err.str();
  std::string text = out.str();
  for (const char* d : {"example.test.", "second.test."}) {
    std::string apex = d;
    EXPECT_NE(text.find(apex + std::string(41 - apex.size(), ' ') + "IN MX 10 mx.example.test.\n"), std::string::npos)
        << text;  // RFC 5321 §5.1
    EXPECT_EQ(txt_of_line(text, apex + "   "), "v=spf1 mx -all");  // RFC 7208 §3
    EXPECT_EQ(txt_of_line(text, "_dmarc." + apex), "v=DMARC1; p=quarantine; adkim=r; aspf=r");  // RFC 7489 §6.1
  }
  EXPECT_EQ(txt_of_line(text, "hk1._domainkey.example.test."), "v=DKIM1; k=rsa; p=" + key->public_key().dkim_p());
  EXPECT_EQ(txt_of_line(text, "mx.example.test. "), "v=spf1 a -all");  // the HELO name, RFC 7208 §2.3
  EXPECT_NE(text.find("no DKIM key configured: run `hikyaku dkim keygen second.test"), std::string::npos) << text;
}

TEST_F(DnsCommandsTest, DnsRecordsReportsUnreadableKey) {
  config_.domains[0].dkim_selector = "hk1";
  config_.domains[0].dkim_key = dir_ / "missing.pem";
  std::ostringstream out, err;
  EXPECT_EQ(dns_records(config_, out, err), 1);
  EXPECT_NE(err.str().find("missing.pem"), std::string::npos) << err.str();
  EXPECT_NE(out.str().find("_dmarc.example.test."), std::string::npos) << "the other records still print";
}

TEST_F(DnsCommandsTest, DnsRecordsWithoutDomains) {
  config_.domains.clear();
  std::ostringstream out, err;
  EXPECT_EQ(dns_records(config_, out, err), 1);
  EXPECT_NE(err.str().find("no [[domain]]"), std::string::npos);
}

TEST(ZoneTxtStrings, SplitsAt255Octets_RFC1035_3_3_14) {
  struct Case {
    const char* name;
    std::string value;
    std::string want;
  };
  const Case cases[] = {
      {"short", "v=spf1 mx -all", "\"v=spf1 mx -all\""},
      {"empty", "", "\"\""},
      {"exactly 255", std::string(255, 'a'), "\"" + std::string(255, 'a') + "\""},
      {"256", std::string(256, 'a'), "\"" + std::string(255, 'a') + "\" \"a\""},
      {"quotes escaped", "a\"b\\c", "\"a\\\"b\\\\c\""},
  };
  for (const auto& c : cases) EXPECT_EQ(zone_txt_strings(c.value), c.want) << c.name;
}

// Issue 16 item 5: keygen writes where the configuration will look — the
// [[domain]]'s dkim_key (resolved against the configuration file, not the
// data directory) with its dkim_selector — so a guide followed to the
// letter ends with a key the server finds.
TEST_F(DnsCommandsTest, KeygenWritesTheConfiguredKeyPath) {
  config_.domains[0].dkim_selector = "hk1";
  config_.domains[0].dkim_key = dir_ / "conf" / "keys" / "example.test.hk1.pem";
  ASSERT_EQ(dkim_keygen(config_, "example.test", std::nullopt, "ed25519", out_, err_), 0) << err_.str();
  EXPECT_TRUE(fs::exists(config_.domains[0].dkim_key)) << out_.str();
  EXPECT_FALSE(fs::exists(config_.data_dir / "keys" / "example.test.hk1.pem"));
  EXPECT_NE(out_.str().find("hk1._domainkey.example.test. IN TXT"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("nothing to change"), std::string::npos) << out_.str();
  // A second run never overwrites it; another selector than the configured
  // one is refused before anything is written.
  EXPECT_EQ(dkim_keygen(config_, "example.test", std::nullopt, "ed25519", out_, err_), 1);
  err_.str("");
  EXPECT_EQ(dkim_keygen(config_, "example.test", std::string("other"), "ed25519", out_, err_), 2);
  EXPECT_NE(err_.str().find("dkim_selector = \"hk1\""), std::string::npos) << err_.str();
}

}  // namespace
}  // namespace hikyaku::admin
