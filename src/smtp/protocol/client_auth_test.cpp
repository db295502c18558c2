#include "smtp/protocol/client_auth.hpp"

#include <gtest/gtest.h>

#include "base/strings.hpp"

namespace hikyaku::smtp::protocol {
namespace {

ServerReply reply(int code, std::string line) {
  ServerReply r;
  r.code = code;
  r.lines.push_back(std::move(line));
  return r;
}

using Kind = ClientAuth::Step::Kind;

TEST(ClientAuth, StrongestMechanismBothSidesAllow) {
  const std::vector<std::string> all = {"CRAM-MD5", "LOGIN", "PLAIN"};
  EXPECT_EQ(choose_client_mechanism({"PLAIN", "LOGIN", "CRAM-MD5"}, all), "CRAM-MD5");
  EXPECT_EQ(choose_client_mechanism({"LOGIN", "PLAIN"}, all), "PLAIN");
  EXPECT_EQ(choose_client_mechanism({"login"}, all), "LOGIN");
  EXPECT_EQ(choose_client_mechanism({"PLAIN", "CRAM-MD5"}, {"LOGIN", "PLAIN"}), "PLAIN");
  EXPECT_EQ(choose_client_mechanism({"XOAUTH2", "SCRAM-SHA-256"}, all), std::nullopt);
  EXPECT_EQ(choose_client_mechanism({}, all), std::nullopt);
}

TEST(ClientAuth, PlainSendsTheInitialResponse_RFC4616) {
  ClientAuth auth("PLAIN", "gw", "s3cret");
  auto s = auth.start();
  ASSERT_EQ(s.kind, Kind::send);
  EXPECT_EQ(s.line, "AUTH PLAIN " + base::base64_encode(std::string("\0gw\0s3cret", 10)));
  EXPECT_EQ(auth.on_reply(reply(235, "235 2.7.0 Authentication successful")).kind, Kind::done);
}

TEST(ClientAuth, LoginAnswersUserThenPassword) {
  ClientAuth auth("LOGIN", "gw", "s3cret");
  EXPECT_EQ(auth.start().line, "AUTH LOGIN");
  auto s = auth.on_reply(reply(334, "334 VXNlcm5hbWU6"));
  ASSERT_EQ(s.kind, Kind::send);
  EXPECT_EQ(s.line, base::base64_encode("gw"));
  s = auth.on_reply(reply(334, "334 UGFzc3dvcmQ6"));
  EXPECT_EQ(s.line, base::base64_encode("s3cret"));
  EXPECT_EQ(auth.on_reply(reply(235, "235 ok")).kind, Kind::done);
}

TEST(ClientAuth, CramMd5AnswersTheRfc2195Example) {
  ClientAuth auth("CRAM-MD5", "tim", "tanstaaftanstaaf");
  EXPECT_EQ(auth.start().line, "AUTH CRAM-MD5");
  auto s = auth.on_reply(reply(334, "334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"));
  ASSERT_EQ(s.kind, Kind::send);
  EXPECT_EQ(s.line, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");  // RFC 2195 §2
}

TEST(ClientAuth, RefusalFailsWithoutThePassword_RFC4954) {
  ClientAuth auth("LOGIN", "gw", "s3cret");
  auth.start();
  auth.on_reply(reply(334, "334 VXNlcm5hbWU6"));
  auth.on_reply(reply(334, "334 UGFzc3dvcmQ6"));
  auto s = auth.on_reply(reply(535, "535 5.7.8 Error: authentication failed"));
  EXPECT_EQ(s.kind, Kind::failed);
  EXPECT_EQ(s.why.find("s3cret"), std::string::npos);
}

TEST(ClientAuth, AnUnexpectedChallengeIsCancelled_RFC4954_4) {
  ClientAuth cram("CRAM-MD5", "gw", "pw");
  cram.start();
  EXPECT_EQ(cram.on_reply(reply(334, "334 !!notbase64")).line, "*");
  auto s = cram.on_reply(reply(501, "501 5.7.0 cancelled"));
  EXPECT_EQ(s.kind, Kind::failed);
  EXPECT_NE(s.why.find("cancelled"), std::string::npos);

  ClientAuth login("LOGIN", "gw", "pw");
  login.start();
  login.on_reply(reply(334, "334 VXNlcm5hbWU6"));
  login.on_reply(reply(334, "334 UGFzc3dvcmQ6"));
  EXPECT_EQ(login.on_reply(reply(334, "334 TW9yZTo=")).line, "*");  // a third prompt
  // A server that then claims success is not believed.
  EXPECT_EQ(login.on_reply(reply(235, "235 ok")).kind, Kind::failed);

  ClientAuth plain("PLAIN", "gw", "pw");
  plain.start();
  EXPECT_EQ(plain.on_reply(reply(334, "334 ")).line, "*");  // the response was already sent
}

}  // namespace
}  // namespace hikyaku::smtp::protocol
