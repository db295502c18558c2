// Stalwart mail-auth's test resources (../shared/testdata/stalwart-mail-auth,
// see its SOURCE.md), read in place, as second-opinion vectors beside the
// ValiMail ARC and openspf SPF suites. One GoogleTest case per vector:
//   StalwartDkim/<file>  dkim/NNN.txt: real signed mail (RFC 8463's example,
//                        ietf.org, facebookmail.com, topicbox.com, github.com)
//                        verified at Unix time 1667843664 as Stalwart does;
//                        its last DKIM-Signature must pass (RFC 6376 §6.1).
//   StalwartArc/<file>   arc/NNN.txt: real ARC chains (Google's seal on an
//                        ietf.org list message): the chain passes (RFC 8617
//                        §5.2) and some DKIM signature of the message passes.
//   StalwartSpf/<file>_<scenario>_<n>
//                        spf/*.yml (a line format, not YAML): check_host()
//                        result and explanation (RFC 7208; six cases where
//                        Stalwart is not RFC 7208 are asserted as RFC 7208
//                        says, reasons in kSpfDeviations), receiver
//                        "localdomain.org", the driver rules of Stalwart's
//                        own test: a file is read line by line, each
//                        "expect:" checked with the records read so far
//                        (from earlier "---" documents too; a later line
//                        for a name and type replaces the earlier one);
//                        the HELO identity checked first and the MAIL FROM
//                        one only when it passes (Stalwart's verify_spf());
//                        "mx: NAME IP, IP" gives
//                        NAME one MX per address (host "mx.IP.N", preference
//                        N+1); a name containing "_dns_error." fails
//                        temporarily; "domain:" is the HELO name, which also
//                        stands in for a sender without "@".
// Every DKIM and ARC vector is also checked from its header section with
// precomputed body hashes, with the same results (body_hashes_for_test.hpp).
// Not used from that folder: rsa-private.pem (Stalwart's signing-test key;
// our signer is checked against the ValiMail signing suite and dkimpy).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "auth/arc/validator.hpp"
#include "auth/body_hashes_for_test.hpp"
#include "auth/common/message.hpp"
#include "auth/dkim/verifier.hpp"
#include "auth/spf/check.hpp"
#include "base/strings.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::auth {
namespace {

constexpr std::string_view kDir = HIKYAKU_TESTDATA_DIR "/stalwart-mail-auth/";

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> files(const std::string& sub, const std::string& ext) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(std::string(kDir) + sub, ec))
    if (e.path().extension() == ext) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  if (out.empty()) out.push_back("missing");  // fails below, naming the folder
  return out;
}

std::string case_name(const testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

// "<name> <TXT value>" lines, an empty line, the message (LF → CRLF).
struct SignedFile {
  dns::FakeResolver zone;
  std::string message;
};

bool load_signed(const std::string& path, SignedFile& out) {
  std::string text = read(path);
  size_t split = text.find("\n\n");
  if (split == std::string::npos) return false;
  for (auto line : base::split(std::string_view(text).substr(0, split), '\n')) {
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) out.zone.add_txt(line.substr(0, sp), std::string(line.substr(sp + 1)));
  }
  out.message = common::to_crlf(text.substr(split + 2));
  return true;
}

dkim::VerifyOptions at_stalwart_time() {
  dkim::VerifyOptions o;
  o.now = std::chrono::system_clock::time_point(std::chrono::seconds(1667843664));
  return o;
}

std::string describe(const std::vector<dkim::Result>& results) {
  std::string out;
  for (const auto& r : results)
    out += std::string(dkim::status_name(r.status)) + " d=" + r.domain + " s=" + r.selector + " (" + r.detail + "); ";
  return out;
}

class StalwartDkim : public testing::TestWithParam<std::string> {};

TEST_P(StalwartDkim, LastSignaturePasses_RFC6376_6_1) {
  SignedFile f;
  ASSERT_TRUE(load_signed(std::string(kDir) + "dkim/" + GetParam(), f)) << "cannot read " << kDir << "dkim/" << GetParam();
  auto results = test_support::verify_both(f.message, f.zone, at_stalwart_time());
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results.back().status, dkim::Status::pass) << describe(results);
}

INSTANTIATE_TEST_SUITE_P(Stalwart, StalwartDkim, testing::ValuesIn(files("dkim", ".txt")), case_name);

class StalwartArc : public testing::TestWithParam<std::string> {};

TEST_P(StalwartArc, ChainPasses_RFC8617_5_2) {
  SignedFile f;
  ASSERT_TRUE(load_signed(std::string(kDir) + "arc/" + GetParam(), f)) << "cannot read " << kDir << "arc/" << GetParam();
  auto arc = test_support::validate_both(f.message, f.zone, at_stalwart_time());
  EXPECT_EQ(arc.status, arc::ChainStatus::pass) << arc.reason;
  auto results = test_support::verify_both(f.message, f.zone, at_stalwart_time());
  EXPECT_TRUE(std::any_of(results.begin(), results.end(),
                          [](const dkim::Result& r) { return r.status == dkim::Status::pass; }))
      << describe(results);
}

INSTANTIATE_TEST_SUITE_P(Stalwart, StalwartArc, testing::ValuesIn(files("arc", ".txt")), case_name);

// ---------------------------------------------------------------- SPF

struct SpfCase {
  std::string name;
  std::string file;
  size_t document = 0;  // the records of documents 0..document-1 apply,
  size_t line = 0;      // and those of this document's lines 0..line
  std::string helo, sender, ip;
  std::string result, explanation;
};

void PrintTo(const SpfCase& c, std::ostream* os) { *os << c.name; }

std::vector<std::string> documents(const std::string& file) {
  std::string text = read(std::string(kDir) + "spf/" + file);
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t sep = text.find("---\n", pos);
    out.push_back(text.substr(pos, sep == std::string::npos ? std::string::npos : sep - pos));
    if (sep == std::string::npos) break;
    pos = sep + 4;
  }
  return out;
}

// A line of the format: "key: rest", after an optional "- ".
bool line_key(std::string_view line, std::string_view key, std::string& rest) {
  line = base::trim(line);
  if (line.starts_with('-')) line = base::trim(line.substr(1));
  if (!line.starts_with(key) || line.substr(key.size(), 1) != ":") return false;
  rest = std::string(base::trim(line.substr(key.size() + 1)));
  return true;
}

std::vector<SpfCase> load_spf() {
  std::vector<SpfCase> out;
  std::set<std::string> names;
  for (const auto& file : files("spf", ".yml")) {
    auto docs = documents(file);
    for (size_t d = 0; d < docs.size(); ++d) {
      std::string scenario, value;
      SpfCase c;
      c.ip = "127.0.0.1";
      int n = 0;
      auto lines = base::split(docs[d], '\n');
      for (size_t l = 0; l < lines.size(); ++l) {
        std::string_view line = lines[l];
        if (line_key(line, "name", value)) scenario = value;
        else if (line_key(line, "domain", value)) c.helo = value;
        else if (line_key(line, "sender", value)) c.sender = value;
        else if (line_key(line, "ip", value)) c.ip = value;
        else if (line_key(line, "expect", value)) {
          size_t sp = value.find(' ');
          c.result = value.substr(0, sp);
          c.explanation = sp == std::string::npos ? "" : std::string(base::trim(value.substr(sp + 1)));
          c.file = file;
          c.document = d;
          c.line = l;
          c.name = file.substr(0, file.size() - 4) + "_" + scenario + "_" + std::to_string(++n);
          for (char& ch : c.name)
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
          while (!names.insert(c.name).second) c.name += "_";
          out.push_back(c);
        }
      }
    }
  }
  if (out.empty()) out.push_back({"suite_not_loadable", "missing", 0, 0, "", "", "", "(a vector)", ""});
  return out;
}

// Stalwart's test caches: one entry per name and type, a later line for the
// same name replacing the earlier one (spf: and exp: share the TXT cache).
struct SpfZone {
  std::map<std::string, std::string> txt;
  std::map<std::string, std::vector<std::string>> a, aaaa, ptr;
  std::map<std::string, std::vector<std::string>> mx;  // name → addresses
  std::set<std::string> dns_error;

  void load(const std::string& document) {
    std::string v;
    for (auto line : base::split(document, '\n')) {
      for (const char* key : {"spf", "exp", "a", "aaaa", "ptr", "mx"}) {
        if (!line_key(line, key, v)) continue;
        size_t sp = v.find(' ');
        if (sp == std::string::npos) break;
        std::string name = base::to_lower(v.substr(0, sp)), data(base::trim(v.substr(sp + 1)));
        std::string k = key;
        std::vector<std::string> items;
        for (auto item : base::split(data, ',')) items.emplace_back(base::trim(item));
        if (k == "spf" || k == "exp") txt[name] = data;
        else if (k == "a") a[name] = items;
        else if (k == "aaaa") aaaa[name] = items;
        else if (k == "ptr") ptr[name] = items;
        else mx[name] = items;
        break;
      }
      // Stalwart's test resolver fails every name containing "_dns_error.".
      static const std::regex dns_error_name("[A-Za-z0-9._-]*_dns_error\\.[A-Za-z0-9.-]+");
      std::string text(line);
      for (std::sregex_iterator it(text.begin(), text.end(), dns_error_name), end; it != end; ++it)
        dns_error.insert(it->str());
    }
  }

  void serve(dns::FakeResolver& zone) const {
    for (const auto& [name, value] : txt) zone.add_txt(name, value);
    for (const auto* family : {&a, &aaaa})
      for (const auto& [name, ips] : *family)
        for (const auto& ip : ips) zone.add_a(name, ip);
    for (const auto& [ip, names] : ptr)
      for (const auto& name : names) zone.add_ptr(ip, name);
    // "mx: NAME IP, IP": one synthetic exchange per address.
    for (const auto& [name, ips] : mx) {
      for (size_t i = 0; i < ips.size(); ++i) {
        std::string host = "mx." + ips[i] + "." + std::to_string(i);
        zone.add_a(host, ips[i]);
        zone.add_mx(name, static_cast<uint16_t>(i + 1), host);
      }
    }
    for (const auto& name : dns_error) zone.set_temp_error(name);
  }
};

// Where Stalwart's expectation is not RFC 7208's (each one checked against
// the RFC text and the openspf RFC 7208 suite): test name → the result we
// assert instead, and why.
struct Deviation {
  std::string_view name, result, reason;
};
constexpr Deviation kSpfDeviations[] = {
    {"all_All_test_1", "permerror",
     "\"v=spf1 -all ip:10.0.0.1\": \"ip\" is no mechanism, and RFC 7208 §4.6 detects syntax errors anywhere "
     "in the record, after \"all\" too (openspf suite: detect-errors-anywhere)"},
    {"basic_DNS_Lookup_Limits_1", "permerror",
     "ten a: terms for names that do not exist are ten void lookups; RFC 7208 §4.6.4 limits them to two "
     "(openspf suite: void-over-limit)"},
    {"basic_DNS_Lookup_Limits_6", "permerror",
     "the mx term has 11 MX names: RFC 7208 §4.6.4 makes that permerror even when an earlier name matches "
     "(openspf suite: mx-limit)"},
    {"exists_Exists_2", "fail", "exists: looks up A records only (RFC 7208 §5.7); ip6.test.org has only AAAA"},
    {"ip_IPv6_match_4", "fail",
     "an IPv4 client never matches ip6: (RFC 7208 §5, §5.6; openspf suite: cidr6-0-ip4), ::ffff:10.1.2.3 "
     "included"},
    {"macro_Macro_expansion_2_2", "fail",
     "exists: looks up A records \"even when the connection type is IPv6\" (RFC 7208 §5.7); the name holds "
     "only AAAA"},
};

class StalwartSpf : public testing::TestWithParam<SpfCase> {};

TEST_P(StalwartSpf, CheckHost_RFC7208) {
  const SpfCase& c = GetParam();
  auto docs = documents(c.file);
  ASSERT_LT(c.document, docs.size());
  // Stalwart's driver reads a file line by line and checks at each
  // "expect:" with the records read so far.
  SpfZone records;
  for (size_t d = 0; d < c.document; ++d) records.load(docs[d]);
  auto lines = base::split(docs[c.document], '\n');
  for (size_t l = 0; l <= c.line && l < lines.size(); ++l) records.load(std::string(lines[l]));
  dns::FakeResolver zone;
  records.serve(zone);
  auto ip = dns::IpAddress::parse(c.ip);
  ASSERT_TRUE(ip.has_value()) << c.ip;
  spf::Options options;
  options.receiver = "localdomain.org";
  options.now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  // Stalwart's verify_spf(): the HELO identity first (RFC 7208 §2.3); only
  // when it passes, the MAIL FROM identity (§2.4) — the sender, or the HELO
  // name when the sender has no "@" (an empty local part is postmaster's,
  // §4.3).
  auto got = spf::check_helo(zone, *ip, c.helo, options);
  if (got.result == spf::Result::pass) {
    std::string sender = c.sender.find('@') == std::string::npos ? "" : c.sender;
    got = spf::check_mail_from(zone, *ip, sender, c.helo, options);
  }
  std::string want = c.result, deviation;
  for (const auto& d : kSpfDeviations) {
    if (d.name != c.name) continue;
    want = d.result;
    deviation = " [Stalwart expects " + c.result + "; " + std::string(d.reason) + "]";
  }
  EXPECT_EQ(spf::to_string(got.result), want) << c.file << ": helo " << c.helo << ", sender " << c.sender
                                              << ", ip " << c.ip << " (" << got.detail << ")" << deviation;
  if (!c.explanation.empty() && deviation.empty()) {
    EXPECT_EQ(got.explanation, c.explanation) << "RFC 7208 §6.2";
  }
}

INSTANTIATE_TEST_SUITE_P(Stalwart, StalwartSpf, testing::ValuesIn(load_spf()),
                         [](const testing::TestParamInfo<SpfCase>& info) { return info.param.name; });

}  // namespace
}  // namespace hikyaku::auth
