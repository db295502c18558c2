// Question normalisation and ordering, and the Answer ↔ LookupResult
// converters.
#include "dns/question.hpp"

#include <gtest/gtest.h>

#include <map>

namespace hikyaku::dns {
namespace {

TEST(Question, NamesAreNormalised_RFC1035_2_3_3) {
  struct Case {
    const char* name;
    const char* input;
    const char* want;
  };
  const Case cases[] = {
      {"lowercased", "Example.COM", "example.com"},
      {"trailing dot dropped", "example.com.", "example.com"},
      {"both", "MX.Example.Test.", "mx.example.test"},
      {"root stays empty", ".", ""},
      {"non-ASCII bytes kept", "b\xc3\xa4r.TEST", "b\xc3\xa4r.test"},
  };
  for (const auto& c : cases) EXPECT_EQ(Question::of(Type::txt, c.input).name, c.want) << c.name;
}

TEST(Question, ReverseQuestionNamesTheReverseZone_RFC1035_3_5_RFC3596_2_5) {
  auto v4 = Question::reverse(*IpAddress::parse("192.0.2.1"));
  EXPECT_EQ(v4.type, Type::ptr);
  EXPECT_EQ(v4.name, "1.2.0.192.in-addr.arpa");
  auto v6 = Question::reverse(*IpAddress::parse("2001:db8::1"));
  EXPECT_EQ(v6.name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
}

TEST(Question, KeysAMapByTypeAndName) {
  std::map<Question, int> m;
  m[Question::of(Type::txt, "Example.com.")] = 1;
  m[Question::of(Type::txt, "example.com")] = 2;  // same question
  m[Question::of(Type::mx, "example.com")] = 3;   // another type
  m[Question::of(Type::txt, "example.org")] = 4;
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m.at(Question::of(Type::txt, "EXAMPLE.COM")), 2);
  EXPECT_LT(Question::of(Type::a, "z.test"), Question::of(Type::aaaa, "a.test")) << "type orders first";
}

TEST(Question, TypeNames) {
  EXPECT_EQ(to_string(Type::a), "A");
  EXPECT_EQ(to_string(Type::aaaa), "AAAA");
  EXPECT_EQ(to_string(Type::mx), "MX");
  EXPECT_EQ(to_string(Type::txt), "TXT");
  EXPECT_EQ(to_string(Type::ptr), "PTR");
}

TEST(Answer, ConvertsToAndFromLookupResults) {
  LookupResult<MxRecord> mx;
  mx.status = Status::ok;
  mx.ttl = 300;
  mx.secure = true;
  mx.records = {{10, "mx.example.test"}, {0, ""}};
  Answer answer = to_answer(mx);
  EXPECT_EQ(answer.status, Status::ok);
  EXPECT_EQ(answer.ttl, 300u);
  EXPECT_TRUE(answer.secure);
  EXPECT_EQ(answer.mx, mx.records);
  EXPECT_TRUE(answer.texts.empty());
  auto back = mx_of(answer);
  EXPECT_EQ(back.records, mx.records);
  EXPECT_EQ(back.ttl, 300u);
  EXPECT_TRUE(back.secure);

  LookupResult<std::string> txt;
  txt.records = {"v=spf1 -all"};
  EXPECT_EQ(texts_of(to_answer(txt)).records, txt.records);

  LookupResult<IpAddress> nx;
  nx.status = Status::nxdomain;
  nx.ttl = 60;
  auto nx_back = addresses_of(to_answer(nx));
  EXPECT_EQ(nx_back.status, Status::nxdomain) << "RFC 2308: NXDOMAIN survives the round trip";
  EXPECT_EQ(nx_back.ttl, 60u);
  EXPECT_TRUE(nx_back.records.empty());

  Answer fresh;
  EXPECT_EQ(fresh.status, Status::temp_error) << "an Answer nobody filled is no answer";
}

}  // namespace
}  // namespace hikyaku::dns
