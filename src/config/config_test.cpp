#include "config/config.hpp"

#include <gtest/gtest.h>

namespace hikyaku::config {
namespace {

LoadResult load(std::string_view text) { return load_config_text(text, "t.toml", "/etc/hk"); }

std::string all_errors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.str() + "\n";
  return out;
}

TEST(Config, DemoConfigIsValid) {
  auto r = load(demo_config_text());
  ASSERT_TRUE(r.config) << all_errors(r);
  EXPECT_EQ(r.config->listen.smtp.at(0).port, 2525);
  EXPECT_EQ(r.config->listen.smtp.at(0).host, "127.0.0.1");
  EXPECT_EQ(r.config->data_dir, "/etc/hk/var");
  EXPECT_TRUE(r.config->is_local_domain("EXAMPLE.test"));
  ASSERT_NE(r.config->find_address("Demo@example.test"), nullptr);
}

TEST(Config, FullSchema) {
  auto r = load(R"(
hostname = "mx.example.com"
data_dir = "/var/lib/hikyaku"
[listen]
smtp = ["0.0.0.0:25", "[::1]:25"]
[delivery]
retry = ["1m", "5m"]
expire = "5d"
[limits]
message_size = "50M"
command_timeout = "5m"
[[domain]]
name = "Example.com"
[[mailbox]]
name = "ituki"
[[mailbox]]
name = "ituki-gm"
quota = "5G"
[[address]]
address = "ituki@example.com"
deliver = ["mailbox:ituki", "forward:ituki-ex@gmail.com"]
[[forward]]
to = "ituki-ex@gmail.com"
fallback = ["mailbox:ituki-gm"]
defer_limit = "15m"
notify = true
)");
  ASSERT_TRUE(r.config) << all_errors(r);
  const auto& c = *r.config;
  EXPECT_EQ(c.listen.smtp.at(1).host, "::1");
  EXPECT_EQ(c.delivery.retry.size(), 2u);
  EXPECT_EQ(c.delivery.expire, Seconds(5 * 86400));
  EXPECT_EQ(c.limits.message_size, 50u * 1024 * 1024);
  EXPECT_EQ(c.limits.command_timeout, Seconds(300));
  EXPECT_EQ(c.domains.at(0).name, "example.com");
  EXPECT_EQ(c.mailboxes.at(0).quota, 0u);  // none unless set
  EXPECT_EQ(c.mailboxes.at(1).quota, 5ull << 30);
  ASSERT_EQ(c.addresses.at(0).deliver.size(), 2u);
  EXPECT_EQ(c.addresses.at(0).deliver[1].kind, mail::Target::Kind::forward);
  EXPECT_TRUE(c.forwards.at(0).hidden);
  EXPECT_EQ(c.forwards.at(0).defer_limit, Seconds(900));
  EXPECT_EQ(c.delivery.rate_limit_pause, Seconds(600));  // default: Gmail's 10 minutes
}

// Issue 17: [delivery] rate_limit_pause, from 1 second (tests) to 2 hours.
TEST(Config, RateLimitPause) {
  for (auto [text, want] : {std::pair{"1s", 1}, std::pair{"10m", 600}, std::pair{"2h", 7200}}) {
    auto r = load(std::string("[delivery]\nrate_limit_pause = \"") + text + "\"\n");
    ASSERT_TRUE(r.config) << text << ": " << all_errors(r);
    EXPECT_EQ(r.config->delivery.rate_limit_pause, Seconds(want)) << text;
  }
}

struct BadCase {
  const char* name;
  const char* toml;
  const char* want;  // substring of the error, including the position
};

// Issue 16: the status listener is loopback-only (no authentication).
TEST(Config, HttpOnLoopback) {
  auto r = load("[listen]\nhttp = [\"127.0.0.1:9025\", \"[::1]:9025\"]\n");
  ASSERT_TRUE(r.config) << all_errors(r);
  ASSERT_EQ(r.config->listen.http.size(), 2u);
  EXPECT_EQ(r.config->listen.http[1].host, "::1");
}

TEST(Config, ErrorsCarryFileLineColumn) {
  const BadCase cases[] = {
      {"syntax", "hostname = \n", "t.toml:1:"},
      {"unknown key", "hostnme = \"x\"\n", "t.toml:1:1: unknown key 'hostnme'"},
      {"wrong type", "[limits]\nrecipients = \"many\"\n", "t.toml:2:14: limits.recipients: expected an integer"},
      {"bad endpoint", "[listen]\nsmtp = [\"localhost\"]\n", "t.toml:2:9: listen.smtp: 'localhost' is not ADDRESS:PORT"},
      {"bad duration", "[limits]\ncommand_timeout = \"5 minutes\"\n", "t.toml:2:19: limits.command_timeout: expected a duration"},
      {"bad quota", "[[mailbox]]\nname = \"a\"\nquota = \"lots\"\n", "t.toml:3:9: mailbox.quota: expected a size like \"50M\""},
      {"duplicate mailbox", "[[mailbox]]\nname = \"a\"\n[[mailbox]]\nname = \"a\"\n", "duplicate mailbox 'a' (first defined at t.toml:1:1)"},
      {"missing mailbox", "[[domain]]\nname=\"e.test\"\n[[address]]\naddress = \"x@e.test\"\ndeliver = [\"mailbox:nobody\"]\n",
       "t.toml:5:12: target 'mailbox:nobody': no [[mailbox]] named 'nobody'"},
      {"bad target", "[[address]]\naddress = \"x@e.test\"\ndeliver = [\"pipe:/bin/sh\"]\n", "must be \"mailbox:NAME\" or \"forward:ADDRESS\""},
      {"hidden forward without mailbox", "[[forward]]\nto = \"a@gmail.test\"\n", "hidden forwards need a fallback ending in a mailbox"},
      {"http not on loopback", "[listen]\nhttp = [\"127.0.0.1:9025\", \"0.0.0.0:9026\"]\n",
       "t.toml:2:8: listen.http: '0.0.0.0:9026' is not a loopback address"},
      {"http on a public IPv6 address", "[listen]\nhttp = [\"[2001:db8::1]:9025\"]\n",
       "t.toml:2:8: listen.http: '[2001:db8::1]:9025' is not a loopback address"},
      {"unknown nested key", "[listen]\nsmpt = [\"127.0.0.1:25\"]\n", "t.toml:2:1: unknown key 'listen.smpt'"},
      {"user not a string", "user = 998\n", "t.toml:1:8: user.user: expected a string"},
      {"user with a slash", "hostname = \"mx.e.test\"\nuser = \"../x\"\n", "t.toml:2:8: user: '../x' is not a user name"},
      {"user with a colon", "user = \"a:b\"\n", "t.toml:1:8: user: 'a:b' is not a user name"},
      {"user like an option", "user = \"-r\"\n", "t.toml:1:8: user: '-r' is not a user name"},
      {"rate_limit_pause not a duration", "[delivery]\nrate_limit_pause = 600\n",
       "t.toml:2:20: delivery.rate_limit_pause: expected a duration"},
      {"rate_limit_pause too short", "[delivery]\nrate_limit_pause = \"0s\"\n",
       "t.toml:2:20: delivery.rate_limit_pause: out of range"},
      {"rate_limit_pause too long", "[delivery]\nrate_limit_pause = \"3h\"\n",
       "t.toml:2:20: delivery.rate_limit_pause: out of range"},
  };
  for (const auto& c : cases) {
    auto r = load(c.toml);
    EXPECT_FALSE(r.config) << c.name;
    EXPECT_NE(all_errors(r).find(c.want), std::string::npos) << c.name << ": got " << all_errors(r);
  }
}

// Issue 13 item 5: the system user to run as; empty (the default) keeps
// the user that started hikyaku. Existence is checked at start-up.
TEST(Config, User) {
  auto none = load("hostname = \"mx.e.test\"\n");
  ASSERT_TRUE(none.config) << all_errors(none);
  EXPECT_EQ(none.config->user, "");
  EXPECT_EQ(none.config->user_where, "");
  auto set = load("hostname = \"mx.e.test\"\nuser = \"hikyaku\"\n");
  ASSERT_TRUE(set.config) << all_errors(set);
  EXPECT_EQ(set.config->user, "hikyaku");
  EXPECT_EQ(set.config->user_where, "t.toml:2:8");
  auto unknown = load("user = \"no-such-user-anywhere\"\n");  // loads: checked when serving
  ASSERT_TRUE(unknown.config) << all_errors(unknown);
  auto empty = load("user = \"\"\n");
  ASSERT_TRUE(empty.config) << all_errors(empty);
  EXPECT_EQ(empty.config->user, "");
}

TEST(Config, ReportsEveryErrorAtOnce) {
  auto r = load("hostnme = 1\n[limits]\nrecipients = -1\nerrors = \"x\"\n");
  EXPECT_EQ(r.errors.size(), 3u) << all_errors(r);
}

// Issue 4: [dmarc] method and per-domain dmarc_inbound.
TEST(Config, DmarcOptions) {
  auto r = load(R"(
[dmarc]
method = "psl"
public_suffix_list = "psl.dat"
[[domain]]
name = "a.test"
dmarc_inbound = "reject"
[[domain]]
name = "b.test"
)");
  ASSERT_TRUE(r.config) << all_errors(r);
  EXPECT_EQ(r.config->dmarc.method, "psl");
  EXPECT_EQ(r.config->dmarc.public_suffix_list, "/etc/hk/psl.dat");
  EXPECT_EQ(r.config->domains.at(0).dmarc_inbound, "reject");
  EXPECT_EQ(r.config->domains.at(1).dmarc_inbound, "tag");
  auto bad = load("[dmarc]\nmethod = \"x\"\n[[domain]]\nname = \"a.test\"\ndmarc_inbound = \"quarantine\"\n");
  ASSERT_FALSE(bad.config);
  EXPECT_EQ(bad.errors.size(), 2u) << all_errors(bad);
}

// Issue 16 item 5: every path value is remembered with its position, and
// the unreadable ones are errors there; dkim = false needs no key.
TEST(Config, ConfiguredFilesAndTheUnreadableOnes) {
  auto r = load(R"(
[[domain]]
name = "a.test"
dkim_selector = "s"
dkim_key = "keys/missing.pem"

[[domain]]
name = "b.test"
dkim = false
dkim_key = "keys/unused.pem"

[srs]
domain = "a.test"
secret_file = "/dev/null"
)");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].str();
  ASSERT_EQ(r.config->files.size(), 2u);
  const auto& key = r.config->files[0].key == "domain.dkim_key" ? r.config->files[0] : r.config->files[1];
  EXPECT_EQ(key.key, "domain.dkim_key");
  EXPECT_EQ(key.path, "/etc/hk/keys/missing.pem") << "relative to the configuration file";
  EXPECT_EQ(key.where, "t.toml:5:12");
  EXPECT_FALSE(r.config->domains[1].dkim);
  EXPECT_TRUE(r.config->domains[1].dkim_key.empty()) << "dkim = false: the key is not used";
  auto unreadable = unreadable_files(*r.config);
  ASSERT_EQ(unreadable.size(), 1u);
  EXPECT_EQ(unreadable[0].str(),
            "t.toml:5:12: domain.dkim_key: cannot read /etc/hk/keys/missing.pem: No such file or directory");
  EXPECT_EQ(unreadable_files(*r.config, "srs.secret_file").size(), 0u);
}

TEST(Config, LogFormat) {
  EXPECT_EQ(load("").config->log_format, "text");
  EXPECT_EQ(load("log_format = \"json\"\n").config->log_format, "json");
  auto bad = load("log_format = \"xml\"\n");
  ASSERT_FALSE(bad.config);
  EXPECT_EQ(bad.errors.at(0).str(), "t.toml:1:14: log_format: one of \"text\", \"json\"");
}

// Issue 13: [access] CIDR allow/deny lists per listener.
TEST(Config, AccessLists) {
  auto r = load(R"(
[access]
imap = { allow = ["192.0.2.0/24", "127.0.0.0/8"], deny = [] }
smtp = { deny = ["127.0.0.66/32", "2001:db8::/32"] }
[access.pop3s]
allow = ["::ffff:198.51.100.0/120"]
)");
  ASSERT_TRUE(r.config) << all_errors(r);
  const auto& a = r.config->access;
  ASSERT_EQ(a.imap.allow.size(), 2u);
  EXPECT_EQ(a.imap.allow[1].str(), "127.0.0.0/8");
  EXPECT_TRUE(a.imap.deny.empty());
  ASSERT_EQ(a.smtp.deny.size(), 2u);
  EXPECT_EQ(a.smtp.deny[1].str(), "2001:db8::/32");
  EXPECT_EQ(a.pop3s.allow.at(0).str(), "198.51.100.0/24") << "RFC 4291 §2.5.5.2: a mapped prefix is IPv4";
  EXPECT_TRUE(a.imaps.empty());
  EXPECT_EQ(&a.of("smtp"), &a.smtp);
  EXPECT_EQ(&a.of("imaps"), &a.imaps);
  EXPECT_TRUE(a.of("http").empty());
  EXPECT_FALSE(a.of("smtp").permits("127.0.0.66"));
  EXPECT_TRUE(a.of("smtp").permits("127.0.0.65"));
  EXPECT_FALSE(a.of("imap").permits("198.51.100.1"));
  EXPECT_TRUE(load("").config->access.smtp.empty());
}

TEST(Config, AccessErrorsCarryFileLineColumn) {
  const BadCase cases[] = {
      {"bad cidr", "[access]\nimap = { allow = [\"192.0.2.0/33\"] }\n",
       "t.toml:2:19: access.imap.allow: '192.0.2.0/33' is not an address or ADDRESS/LENGTH prefix: prefix length "
       "above /32"},
      {"host bits", "[access]\nsmtp = { deny = [\"127.0.0.0/8\", \"10.1.2.3/8\"] }\n",
       "t.toml:2:33: access.smtp.deny: '10.1.2.3/8' is not an address or ADDRESS/LENGTH prefix: host bits set after "
       "/8 (the network is 10.0.0.0/8)"},
      {"hostname", "[access]\npop3 = { allow = [\"mail.example.com\"] }\n",
       "t.toml:2:19: access.pop3.allow: 'mail.example.com' is not an address"},
      {"not a string", "[access]\npop3 = { allow = [24] }\n", "t.toml:2:19: access.pop3.allow: expected a string"},
      {"not a list", "[access]\npop3 = { allow = \"127.0.0.1\" }\n",
       "t.toml:2:18: access.pop3.allow: expected a list of strings"},
      {"unknown listener", "[access]\nimap4 = { allow = [] }\n", "t.toml:2:1: unknown key 'access.imap4'"},
      {"unknown rule key", "[access]\nimap = { permit = [] }\n", "t.toml:2:10: unknown key 'access.imap.permit'"},
      {"not a table", "[access]\nimap = [\"127.0.0.1\"]\n", "t.toml:2:8: access.imap: expected a table"},
      {"access not a table", "access = 1\n", "t.toml:1:10: access: expected a table [access]"},
  };
  for (const auto& c : cases) {
    auto r = load(c.toml);
    EXPECT_FALSE(r.config) << c.name;
    EXPECT_NE(all_errors(r).find(c.want), std::string::npos) << c.name << ": got " << all_errors(r);
  }
  // Every bad prefix at once.
  auto r = load("[access]\nimap = { allow = [\"x\", \"1.2.3.4/40\"], deny = [\"::1/200\"] }\n");
  EXPECT_EQ(r.errors.size(), 3u) << all_errors(r);
}

// [[tls.certificate]]: more certificates for SNI, each with the position of
// its files (serve and reload name them in their errors).
TEST(Config, TlsCertificates) {
  auto r = load(R"([tls]
cert = "default.pem"
key = "default.key"

[[tls.certificate]]
cert = "/etc/a/fullchain.pem"
key = "/etc/a/privkey.pem"

[[tls.certificate]]
cert = "b.pem"
key = "b.key"
)");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].str();
  const auto& tls = r.config->tls;
  EXPECT_EQ(tls.cert_where, "t.toml:2:8");
  EXPECT_EQ(tls.key_where, "t.toml:3:7");
  ASSERT_EQ(tls.certificates.size(), 2u);
  EXPECT_EQ(tls.certificates[0].cert, "/etc/a/fullchain.pem");
  EXPECT_EQ(tls.certificates[0].cert_where, "t.toml:6:8");
  EXPECT_EQ(tls.certificates[0].key_where, "t.toml:7:7");
  EXPECT_EQ(tls.certificates[1].key.filename(), "b.key");
  EXPECT_TRUE(tls.certificates[1].key.is_absolute()) << "relative to the configuration file";

  auto half = load("[tls]\ncert = \"a.pem\"\nkey = \"a.key\"\n[[tls.certificate]]\ncert = \"b.pem\"\n");
  ASSERT_FALSE(half.config);
  EXPECT_EQ(half.errors.at(0).str(), "t.toml:4:1: tls.certificate: set both cert and key");

  auto no_default = load("[[tls.certificate]]\ncert = \"b.pem\"\nkey = \"b.key\"\n");
  ASSERT_FALSE(no_default.config);
  EXPECT_NE(no_default.errors.at(0).message.find("needs a default certificate"), std::string::npos)
      << no_default.errors.at(0).str();

  auto unknown = load("[tls]\nself_signed = true\n[[tls.certificate]]\ncert = \"b.pem\"\nkey = \"b.key\"\nnames = []\n");
  ASSERT_FALSE(unknown.config);
  EXPECT_EQ(unknown.errors.at(0).str(), "t.toml:6:1: unknown key 'tls.certificate.names'");
}

// Issue 14: the gateway's rule list, first match wins. Four layouts of a
// Windows SMTP gateway's rule list, each with recipients and the next hop
// they get ("mx" = normal delivery; "local" = this server's mailboxes).
struct RouteLayout {
  const char* name;
  const char* rules;
  std::vector<std::pair<const char*, const char*>> want;  // recipient → next hop
  size_t warnings = 0;
};

TEST(Config, RouteTableLayouts) {
  const std::string base = R"(
hostname = "gw.example.jp"
[listen]
smtp = ["127.0.0.1:2525"]
[[domain]]
name = "example.jp"
[[mailbox]]
name = "box"
[[address]]
address = "user1@example.jp"
deliver = ["mailbox:box"]
)";
  const std::vector<RouteLayout> layouts = {
      {"one address rule plus a catch-all",
       R"([[route]]
match = "boss@corp.example"
via = "[127.0.0.5]:2526"
[[route]]
match = "*"
via = "relay.isp.example:587"
)",
       {{"boss@corp.example", "[127.0.0.5]:2526"},
        {"Boss@Corp.Example", "[127.0.0.5]:2526"},
        {"other@corp.example", "relay.isp.example:587"},
        {"someone@gmail.com", "relay.isp.example:587"},
        {"user1@example.jp", "none"}}},  // "*" never takes a local domain's mail
      {"address, domain and catch-all rules in order",
       R"([[route]]
match = "user1@corp.example"
via = "127.0.0.5:2526"
[[route]]
match = "@corp.example"
via = "127.0.0.6:2526"
[[route]]
match = "*"
via = "[127.0.0.7]:587"
)",
       {{"user1@corp.example", "[127.0.0.5]:2526"},
        {"user2@corp.example", "[127.0.0.6]:2526"},
        {"x@sub.corp.example", "[127.0.0.7]:587"},
        {"a@b.example", "[127.0.0.7]:587"}}},
      {"a rule to an IP with a local-domain local rule",
       R"([[route]]
match = "user9@example.jp"
via = "[192.0.2.10]"
[[route]]
match = "@example.jp"
via = "local"
[[route]]
match = "@partner.example"
via = "[192.0.2.20]:25"
)",
       {{"user9@example.jp", "[192.0.2.10]:25"},
        {"user1@example.jp", "local"},
        {"x@partner.example", "[192.0.2.20]:25"},
        {"x@elsewhere.example", "none"}}},
      {"a rule that can never match",
       R"([[route]]
match = "@corp.example"
via = "127.0.0.6:2526"
[[route]]
match = "user1@corp.example"
via = "127.0.0.5:2526"
[[route]]
match = "*"
via = "mx"
[[route]]
match = "@late.example"
via = "127.0.0.5:2526"
)",
       {{"user1@corp.example", "[127.0.0.6]:2526"}, {"z@late.example", "mx"}},
       2},
  };
  for (const auto& layout : layouts) {
    auto r = load(base + layout.rules);
    ASSERT_TRUE(r.config) << layout.name << "\n" << all_errors(r);
    for (const auto& [rcpt, hop] : layout.want) {
      const Route* rule = r.config->find_route(rcpt);
      const Route* relay = r.config->relay_route(rcpt);
      std::string got = relay ? relay->via.str() : rule && !rule->is_relay() ? rule->via.str() : "none";
      EXPECT_EQ(got, hop) << layout.name << ": " << rcpt;
    }
    EXPECT_EQ(r.config->warnings.size(), layout.warnings) << layout.name;
  }
}

TEST(Config, RouteNeverMatchingIsAWarningWithFileAndLine) {
  auto r = load(R"(
[[route]]
match = "*"
via = "[192.0.2.1]:25"
[[route]]
match = "@corp.example"
via = "[192.0.2.2]:25"
)");
  ASSERT_TRUE(r.config) << all_errors(r);
  ASSERT_EQ(r.config->warnings.size(), 1u);
  EXPECT_EQ(r.config->warnings[0].where, "t.toml:5:1");
  EXPECT_NE(r.config->warnings[0].message.find("can never match: the rule at t.toml:2:1 ('*')"), std::string::npos)
      << r.config->warnings[0].message;
}

// A DKIM key without its selector was skipped silently; a forwarding
// domain without a key is worth a warning.
TEST(Config, DkimKeyNeedsItsSelectorAndAForwardingDomainWithoutAKeyIsAWarning) {
  auto no_selector = load("[[domain]]\nname = \"k.test\"\ndkim_key = \"k.pem\"\n");
  ASSERT_FALSE(no_selector.config);
  EXPECT_NE(all_errors(no_selector).find("t.toml:3:12: domain.dkim_key: needs dkim_selector"), std::string::npos)
      << all_errors(no_selector);
  const std::string forwarding = "[[domain]]\nname = \"k.test\"\n[[mailbox]]\nname = \"fb\"\n[[address]]\n"
                                 "address = \"me@k.test\"\ndeliver = [\"forward:me@gmail.test\"]\n[srs]\n"
                                 "domain = \"k.test\"\nsecret_file = \"s\"\n";
  auto warned = load(forwarding);
  ASSERT_TRUE(warned.config) << all_errors(warned);
  ASSERT_EQ(warned.config->warnings.size(), 1u);
  EXPECT_NE(warned.config->warnings[0].message.find("domain k.test has no dkim_key"), std::string::npos);
  auto unsigned_on_purpose = load(std::string(forwarding).replace(forwarding.find("\n[[mailbox]]"), 0,
                                                                  "\ndkim = false"));
  ASSERT_TRUE(unsigned_on_purpose.config) << all_errors(unsigned_on_purpose);
  EXPECT_TRUE(unsigned_on_purpose.config->warnings.empty());
}

// The error names the [[forward]] table at fault, not the first one.
TEST(Config, AHiddenForwardErrorPointsAtItsOwnTable) {
  auto r = load("[[mailbox]]\nname = \"fb\"\n[[forward]]\nto = \"ok@gmail.test\"\nfallback = [\"mailbox:fb\"]\n"
                "[[forward]]\nto = \"bad@gmail.test\"\n");
  ASSERT_FALSE(r.config);
  EXPECT_NE(all_errors(r).find("t.toml:6:1: forward 'bad@gmail.test': hidden forwards need a fallback"),
            std::string::npos)
      << all_errors(r);
}

// [srs] needs both keys: one alone turned SRS off silently (no domain) or
// stopped serve with no position (no secret file).
TEST(Config, SrsNeedsBothDomainAndSecretFile) {
  auto no_domain = load("[srs]\nsecret_file = \"s\"\n");
  ASSERT_FALSE(no_domain.config);
  EXPECT_NE(all_errors(no_domain).find("t.toml:1:1: srs.domain: missing (secret_file is set; both or neither)"),
            std::string::npos)
      << all_errors(no_domain);
  auto no_secret = load("[srs]\ndomain = \"example.test\"\n");
  ASSERT_FALSE(no_secret.config);
  EXPECT_NE(all_errors(no_secret).find("srs.secret_file: missing (domain is set; both or neither)"), std::string::npos)
      << all_errors(no_secret);
}

// Settings that would refuse all mail while the server looks healthy are
// errors at their own line.
TEST(Config, ZeroLimitsAndAnEmptyDeliverAreErrors) {
  auto limits = load("[limits]\nmessage_size = 0\nrecipients = 0\nconnections = 0\nconnections_per_ip = 0\n");
  ASSERT_FALSE(limits.config);
  const std::string all = all_errors(limits);
  for (const char* want : {"t.toml:2:16: limits.message_size: 0 would refuse everything",
                           "t.toml:3:14: limits.recipients: 0", "t.toml:4:15: limits.connections: 0",
                           "t.toml:5:22: limits.connections_per_ip: 0"})
    EXPECT_NE(all.find(want), std::string::npos) << want << "\n" << all;
  auto empty = load("[[address]]\naddress = \"x@example.test\"\ndeliver = []\n");
  ASSERT_FALSE(empty.config);
  EXPECT_NE(all_errors(empty).find("t.toml:3:11: address.deliver: empty (mail for 'x@example.test' would be accepted"),
            std::string::npos)
      << all_errors(empty);
}

// A hidden forward without [srs]: loaded (it works, and a refusal at SMTP
// time still diverts), with a warning that a late bounce would reach the
// sender and name the address.
TEST(Config, HiddenForwardWithoutSrsIsAWarning) {
  const std::string forwards = R"(
[[mailbox]]
name = "fb"
[[address]]
address = "me@example.test"
deliver = ["forward:me@gmail.test", "forward:open@gmail.test"]
[[forward]]
to = "me@gmail.test"
fallback = ["mailbox:fb"]
[[forward]]
to = "open@gmail.test"
hidden = false
)";
  auto r = load(forwards);
  ASSERT_TRUE(r.config) << all_errors(r);
  ASSERT_EQ(r.config->warnings.size(), 1u);
  EXPECT_EQ(r.config->warnings[0].where, "t.toml:7:1");
  EXPECT_EQ(r.config->warnings[0].message.find("gmail.test"), std::string::npos) << "no hidden address in a log";
  EXPECT_NE(r.config->warnings[0].message.find("1 hidden forward(s) without [srs]: "), std::string::npos)
      << r.config->warnings[0].message;
  auto with_srs = load(forwards + "[srs]\ndomain = \"example.test\"\nsecret_file = \"s\"\n");
  ASSERT_TRUE(with_srs.config) << all_errors(with_srs);
  EXPECT_TRUE(with_srs.config->warnings.empty());
}

TEST(Config, RouteOptions) {
  auto r = load(R"(
[[mailbox]]
name = "sent"
[[route]]
match = "*"
via = "smtp.isp.example:587"
helo = "customer-123.isp.example"
auth = { user = "gw", password_file = "relay.pw", mechanisms = ["login", "CRAM-MD5"] }
copy_to = "mailbox:sent"
[[route.account]]
sender = "User1@example.jp"
user = "user1"
password_file = "/etc/hk/user1.pw"
[[route]]
match = "@corp.example"
via = "[::1]:2526"
tls = "none"
recipients = ["A@corp.example", "b@corp.example"]
)");
  ASSERT_TRUE(r.config) << all_errors(r);
  const Route& relay = r.config->routes.at(0);
  EXPECT_EQ(relay.via.kind, NextHop::Kind::host);
  EXPECT_EQ(relay.via.port, 587);
  EXPECT_EQ(relay.tls, RouteTls::required);  // it logs in
  EXPECT_EQ(relay.mechanisms, (std::vector<std::string>{"LOGIN", "CRAM-MD5"}));
  ASSERT_TRUE(relay.auth);
  EXPECT_EQ(relay.auth->password_file, "/etc/hk/relay.pw");
  ASSERT_NE(relay.account_for("user1@EXAMPLE.jp"), nullptr);
  EXPECT_EQ(relay.account_for("user1@example.jp")->user, "user1");
  EXPECT_EQ(relay.account_for("other@example.jp")->user, "gw");
  EXPECT_EQ(relay.copy_to, "sent");
  const Route& corp = r.config->routes.at(1);
  EXPECT_EQ(corp.via.kind, NextHop::Kind::address);
  EXPECT_EQ(corp.via.host, "::1");
  EXPECT_EQ(corp.via.str(), "[::1]:2526");
  EXPECT_EQ(corp.tls, RouteTls::none);
  EXPECT_EQ(corp.recipients, (std::vector<std::string>{"a@corp.example", "b@corp.example"}));
  EXPECT_EQ(corp.account_for("x@y.example"), nullptr);

  auto verified = load(R"(
[[route]]
match = "*"
via = "smtp.isp.example:465"
tls = "verify"
tls_ca_file = "ca.pem"
auth = { user = "gw", password_file = "relay.pw" }
)");
  ASSERT_TRUE(verified.config) << all_errors(verified);
  EXPECT_EQ(verified.config->routes.at(0).tls, RouteTls::verify);  // a login keeps "verify"
  EXPECT_EQ(verified.config->routes.at(0).tls_ca_file, "/etc/hk/ca.pem");
}

TEST(Config, RouteErrorsCarryFileLineColumn) {
  const std::string listen = "hostname = \"gw.example.jp\"\n[listen]\nsmtp = [\"0.0.0.0:25\"]\n";
  const std::vector<BadCase> cases = {
      {"back at our own listener", "[[route]]\nmatch = \"*\"\nvia = \"[127.0.0.1]:25\"\n",
       "t.toml:4:1: route '*' via [127.0.0.1]:25: [127.0.0.1]:25 is one of this server's own listeners: mail would loop"},
      {"back at our hostname", "[[route]]\nmatch = \"*\"\nvia = \"GW.example.jp\"\n",
       "t.toml:4:1: route '*' via gw.example.jp:25: gw.example.jp is this server (hostname gw.example.jp): mail would loop"},
      {"localhost", "[[route]]\nmatch = \"*\"\nvia = \"localhost:25\"\n", "localhost is this server"},
      {"bad via", "[[route]]\nmatch = \"*\"\nvia = \"relay example\"\n", "t.toml:6:7: route.via: expected"},
      {"bad match", "[[route]]\nmatch = \"corp.example\"\nvia = \"mx\"\n", "t.toml:5:9: route.match: expected"},
      {"local outside our domains", "[[route]]\nmatch = \"@corp.example\"\nvia = \"local\"\n",
       "\"local\" needs a match in one of this server's [[domain]]s"},
      {"auth in clear", "[[route]]\nmatch = \"*\"\nvia = \"r.example\"\ntls = \"opportunistic\"\n"
                        "auth = { user = \"u\", password_file = \"p\" }\n",
       "t.toml:7:7: route.tls: must be \"required\" or \"verify\" when the rule logs in"},
      {"unknown mechanism", "[[route]]\nmatch = \"*\"\nvia = \"r.example\"\n"
                            "auth = { user = \"u\", password_file = \"p\", mechanisms = [\"XOAUTH2\"] }\n",
       "route.auth.mechanisms: 'XOAUTH2' is not one of CRAM-MD5, LOGIN, PLAIN"},
      {"auth for mx", "[[route]]\nmatch = \"*\"\nvia = \"mx\"\nhelo = \"x.example\"\n",
       "apply only to a via that names a host or an address"},
      {"recipient not matched", "[[route]]\nmatch = \"@corp.example\"\nvia = \"r.example\"\n"
                                "recipients = [\"a@other.example\"]\n",
       "t.toml:7:15: route.recipients: 'a@other.example' is not matched by this rule's match '@corp.example'"},
      {"copy_to unknown mailbox", "[[route]]\nmatch = \"*\"\nvia = \"r.example\"\ncopy_to = \"mailbox:nope\"\n",
       "copy_to: no [[mailbox]] named 'nope'"},
      {"unknown key", "[[route]]\nmatch = \"*\"\nvia = \"r.example\"\nport = 25\n", "unknown key 'route.port'"},
      {"verify_recipients with the catch-all", "[[route]]\nmatch = \"*\"\nvia = \"r.example\"\nverify_recipients = true\n",
       "t.toml:7:21: route.verify_recipients: only for a rule that names an address or a domain"},
      {"ca file without verify", "[[route]]\nmatch = \"*\"\nvia = \"r.example\"\ntls_ca_file = \"ca.pem\"\n",
       "t.toml:7:15: route.tls_ca_file: only with tls = \"verify\""},
  };
  for (const auto& c : cases) {
    auto r = load(listen + c.toml);
    EXPECT_FALSE(r.config) << c.name;
    EXPECT_NE(all_errors(r).find(c.want), std::string::npos) << c.name << "\n" << all_errors(r);
  }
}


// Issue 17 item 4: the forwarder's own source address, EHLO name and address
// family (Postfix's smtp_bind_address / smtp_bind_address6).
TEST(Config, SourceAddressAndFamily) {
  auto none = load("");
  ASSERT_TRUE(none.config) << all_errors(none);
  EXPECT_TRUE(none.config->delivery.source_address.empty());
  EXPECT_EQ(none.config->delivery.source_name, "");
  EXPECT_EQ(none.config->delivery.address_family, config::AddressFamily::any);

  auto r = load(R"(
[delivery]
source_address = "127.0.0.3"
source_name = "fwd.example.test"
address_family = "ipv4"

[[forward]]
to = "a@gmail.test"
hidden = false
source_address = ["::1", "127.0.0.4"]
source_name = "other.example.test"

[[forward]]
to = "b@gmail.test"
hidden = false
source_address = "::1"
)");
  ASSERT_TRUE(r.config) << all_errors(r);
  const auto& d = r.config->delivery;
  EXPECT_EQ(d.source_address.v4, "127.0.0.3");
  EXPECT_EQ(d.source_address.v6, "");
  EXPECT_EQ(d.source_name, "fwd.example.test");
  EXPECT_EQ(d.address_family, config::AddressFamily::ipv4);
  const auto* a = r.config->find_forward("a@gmail.test");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->source_address.v4, "127.0.0.4");
  EXPECT_EQ(a->source_address.v6, "::1");
  EXPECT_EQ(a->source_name, "other.example.test");
  const auto* b = r.config->find_forward("b@gmail.test");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->source_address.v4, "");
  EXPECT_EQ(b->source_address.v6, "::1");
  EXPECT_EQ(b->source_name, "");
  EXPECT_EQ(load("[delivery]\naddress_family = \"ipv6\"\n").config->delivery.address_family,
            config::AddressFamily::ipv6);
  EXPECT_EQ(load("[delivery]\naddress_family = \"any\"\n").config->delivery.address_family,
            config::AddressFamily::any);
}

TEST(Config, SourceAddressErrorsCarryFileLineColumn) {
  const BadCase cases[] = {
      {"host name", "[delivery]\nsource_address = \"mail.example.test\"\n",
       "t.toml:2:18: delivery.source_address: 'mail.example.test': not an IPv4 or IPv6 address"},
      {"bad v4", "[delivery]\nsource_address = \"127.0.0.300\"\n",
       "t.toml:2:18: delivery.source_address: '127.0.0.300': not an IPv4 address"},
      {"prefix", "[delivery]\nsource_address = \"127.0.0.0/8\"\n",
       "t.toml:2:18: delivery.source_address: '127.0.0.0/8': an address, not a prefix"},
      {"two v4", "[delivery]\nsource_address = [\"127.0.0.2\", \"127.0.0.3\"]\n",
       "t.toml:2:32: delivery.source_address: two IPv4 addresses (at most one of each family)"},
      {"two v6", "[delivery]\nsource_address = [\"::1\", \"::2\"]\n",
       "t.toml:2:26: delivery.source_address: two IPv6 addresses (at most one of each family)"},
      {"empty list", "[delivery]\nsource_address = []\n",
       "t.toml:2:18: delivery.source_address: expected an IP address or a list of one IPv4 and one IPv6 address"},
      {"number", "[delivery]\nsource_address = 127\n",
       "t.toml:2:18: delivery.source_address: expected an IP address or a list of one IPv4 and one IPv6 address"},
      {"number in list", "[delivery]\nsource_address = [\"::1\", 1]\n",
       "t.toml:2:26: delivery.source_address: expected a string (an IP address)"},
      {"family", "[delivery]\naddress_family = \"inet6\"\n",
       "t.toml:2:18: delivery.address_family: one of \"ipv4\", \"ipv6\", \"any\""},
      {"name", "[delivery]\nsource_name = \"not a name\"\n",
       "t.toml:2:15: delivery.source_name: 'not a name' is not a domain name"},
      {"forward", "[[forward]]\nto = \"a@b.test\"\nhidden = false\nsource_address = \"x\"\n",
       "t.toml:4:18: forward.source_address: 'x': not an IPv4 or IPv6 address"},
      {"forward name", "[[forward]]\nto = \"a@b.test\"\nhidden = false\nsource_name = \"a b\"\n",
       "t.toml:4:15: forward.source_name: 'a b' is not a domain name"},
  };
  for (const auto& c : cases) {
    auto r = load(c.toml);
    EXPECT_FALSE(r.config) << c.name;
    EXPECT_NE(all_errors(r).find(c.want), std::string::npos) << c.name << ": got " << all_errors(r);
  }
}

}  // namespace
}  // namespace hikyaku::config

namespace hikyaku::config {
namespace {

// Issue 17: [scan] and [[forward]] spam, with every mistake at its line.
TEST(Config, Scan) {
  auto r = load(R"(
[scan]
clamd = "unix:/run/clamav/clamd.ctl"
rspamd = "http://localhost:11333/"
timeout = "45s"
on_failure = "accept"
clamd_scope = "attachments"
[[mailbox]]
name = "m"
[[forward]]
to = "a@gmail.test"
fallback = ["mailbox:m"]
spam = "forward"
[[forward]]
to = "b@gmail.test"
fallback = ["mailbox:m"]
)");
  ASSERT_TRUE(r.config) << r.errors.at(0).str();
  const Scan& s = r.config->scan;
  EXPECT_EQ(s.clamd.unix_path, "/run/clamav/clamd.ctl");
  EXPECT_EQ(s.rspamd.tcp.str(), "127.0.0.1:11333");
  EXPECT_EQ(s.timeout, Seconds(45));
  EXPECT_TRUE(s.accept_on_failure);
  EXPECT_EQ(s.clamd_scope, Scan::ClamdScope::attachments);
  EXPECT_TRUE(s.enabled());
  EXPECT_TRUE(r.config->find_forward("a@gmail.test")->forward_spam);
  EXPECT_FALSE(r.config->find_forward("b@gmail.test")->forward_spam);

  auto d = load("[scan]\n");
  ASSERT_TRUE(d.config);
  EXPECT_FALSE(d.config->scan.enabled());
  EXPECT_EQ(d.config->scan.timeout, Seconds(30));
  EXPECT_FALSE(d.config->scan.accept_on_failure);
  EXPECT_EQ(d.config->scan.clamd_scope, Scan::ClamdScope::message);
  auto m = load("[scan]\nclamd_scope = \"message\"\n");
  ASSERT_TRUE(m.config);
  EXPECT_EQ(m.config->scan.clamd_scope, Scan::ClamdScope::message);

  auto bad = load(R"([scan]
clamd = "clamd.example:3310"
rspamd = "127.0.0.1:11333"
on_failure = "maybe"
timeout = "0s"
color = 1
clamd_scope = "parts"
)");
  std::vector<std::string> got;
  for (const auto& e : bad.errors) got.push_back(e.str());
  ASSERT_EQ(got.size(), 6u);
  EXPECT_TRUE(got[0].starts_with("t.toml:6:1: unknown key 'scan.color'")) << got[0];
  EXPECT_TRUE(got[1].starts_with("t.toml:2:9: scan.clamd: 'clamd.example:3310' is not IP:PORT")) << got[1];
  EXPECT_TRUE(got[2].starts_with("t.toml:3:10: scan.rspamd: expected \"http://IP:PORT\"")) << got[2];
  EXPECT_TRUE(got[3].starts_with("t.toml:5:11: scan.timeout: out of range")) << got[3];
  EXPECT_TRUE(got[4].starts_with("t.toml:4:14: scan.on_failure:")) << got[4];
  EXPECT_TRUE(got[5].starts_with("t.toml:7:15: scan.clamd_scope: one of \"message\", \"attachments\"")) << got[5];
  // A UNIX socket path must fit sockaddr_un (107 bytes and the NUL).
  const std::string fits = "/" + std::string(106, 'p');
  EXPECT_TRUE(load("[scan]\nclamd = \"unix:" + fits + "\"\n").config);
  auto too_long = load("[scan]\nclamd = \"unix:" + fits + "q\"\n");
  ASSERT_EQ(too_long.errors.size(), 1u);
  EXPECT_TRUE(too_long.errors[0].str().starts_with("t.toml:2:9: scan.clamd: the socket path is 108 bytes long"))
      << too_long.errors[0].str();
  // A value of the wrong type is refused at its line too.
  auto typed = load("[scan]\nclamd_scope = 1\n");
  ASSERT_FALSE(typed.errors.empty());
  EXPECT_TRUE(typed.errors[0].str().starts_with("t.toml:2:15: ")) << typed.errors[0].str();
}

}  // namespace
}  // namespace hikyaku::config
