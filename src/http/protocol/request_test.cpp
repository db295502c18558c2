#include "http/protocol/request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace hikyaku::http::protocol {
namespace {

using Kind = ParseResult::Kind;

struct Case {
  const char* name;
  std::string input;
  Kind want;
  int status = 0;  // for errors
};

TEST(HttpRequest, TableOfHeads) {
  const std::string big_field = "X-Big: " + std::string(9000, 'a') + "\r\n";
  std::string many_fields;
  for (int i = 0; i < 65; ++i) many_fields += "X-" + std::to_string(i) + ": 1\r\n";
  const Case cases[] = {
      {"rfc9112_3_simple_get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", Kind::complete},
      {"rfc9112_2_2_bare_lf_accepted", "GET /metrics HTTP/1.1\nHost: x\n\n", Kind::complete},
      {"http10_without_host", "GET / HTTP/1.0\r\n\r\n", Kind::complete},
      {"incomplete_line", "GET / HTTP/1.1\r\nHost:", Kind::incomplete},
      {"incomplete_empty", "", Kind::incomplete},
      {"rfc9112_3_2_host_missing", "GET / HTTP/1.1\r\n\r\n", Kind::error, 400},
      {"rfc9112_3_2_host_twice", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Kind::error, 400},
      {"rfc9112_5_1_space_before_colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", Kind::error, 400},
      {"rfc9112_5_2_obs_fold", "GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n", Kind::error, 400},
      {"rfc9112_2_2_bare_cr", "GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", Kind::error, 400},
      {"field_without_colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", Kind::error, 400},
      {"nul_in_value", std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29), Kind::error, 400},
      {"absolute_form_refused", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", Kind::error, 400},
      {"asterisk_form_refused", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", Kind::error, 400},
      {"two_spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", Kind::error, 400},
      {"no_version", "GET /\r\nHost: x\r\n\r\n", Kind::error, 400},
      {"bad_version", "GET / HTTX/1.1\r\nHost: x\r\n\r\n", Kind::error, 400},
      {"http2_version_505", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", Kind::error, 505},
      {"method_not_token", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", Kind::error, 400},
      {"leading_empty_line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", Kind::error, 400},
      {"rfc6585_5_head_too_large_unterminated", "GET / HTTP/1.1\r\n" + big_field, Kind::error, 431},
      {"rfc6585_5_head_too_large", "GET / HTTP/1.1\r\nHost: x\r\n" + big_field + "\r\n", Kind::error, 431},
      {"rfc6585_5_too_many_fields", "GET / HTTP/1.1\r\nHost: x\r\n" + many_fields + "\r\n", Kind::error, 431},
      {"post_parses_and_is_refused_later", "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
       Kind::complete},
  };
  for (const auto& c : cases) {
    const auto got = parse_request(c.input);
    EXPECT_EQ(got.kind, c.want) << c.name;
    if (c.want == Kind::error) {
      EXPECT_EQ(got.status, c.status) << c.name;
    }
  }
}

TEST(HttpRequest, FieldsAndTarget) {
  const std::string head = "GET /metrics?name[]=x HTTP/1.1\r\nHOST:  example \r\nUser-Agent: Prometheus/2\r\n\r\n";
  const auto got = parse_request(head + "trailing body");
  ASSERT_EQ(got.kind, Kind::complete);
  EXPECT_EQ(got.consumed, head.size());
  EXPECT_EQ(got.request.method, "GET");
  EXPECT_EQ(got.request.target, "/metrics?name[]=x");
  EXPECT_EQ(got.request.path, "/metrics");
  EXPECT_EQ(got.request.minor, 1);
  ASSERT_NE(got.request.field("host"), nullptr);
  EXPECT_EQ(*got.request.field("host"), "example");  // RFC 9112 §5.1: OWS trimmed
  EXPECT_EQ(*got.request.field("user-agent"), "Prometheus/2");
  EXPECT_EQ(got.request.field("accept"), nullptr);
}

Site test_site(bool healthy = true) {
  return Site{[] { return std::string("# metrics\n"); }, [] { return std::string("<html></html>"); },
              [healthy] { return healthy; }};
}

Request request(std::string method, std::string path, std::string host = "127.0.0.1:9025") {
  Request r;
  r.method = std::move(method);
  r.path = path;
  r.target = std::move(path);
  r.fields.emplace_back("host", std::move(host));
  return r;
}

// DNS rebinding: only a request naming this listener by an address or as
// localhost is answered (RFC 9110 §7.4, 421 otherwise).
TEST(HttpRespond, OnlyForAnAddressOrLocalhostInHost) {
  const Site site = test_site();
  for (const char* host : {"127.0.0.1", "127.0.0.1:9025", "[::1]:9025", "[::1]", "localhost", "LOCALHOST:9025"})
    EXPECT_EQ(respond(request("GET", "/", host), site).status, 200) << host;
  for (const char* host : {"rebind.attacker.example:9025", "attacker.example", "", "[::1", "127.0.0.1.nip.io",
                           "localhost.attacker.example"})
    EXPECT_EQ(respond(request("GET", "/metrics", host), site).status, 421) << host;
  Request http10 = request("GET", "/healthz");
  http10.fields.clear();
  http10.minor = 0;
  EXPECT_EQ(respond(http10, site).status, 200);  // no Host: no browser sent it
  http10.minor = 1;
  EXPECT_EQ(respond(http10, site).status, 421);
}

TEST(HttpRespond, Routes) {
  const Site site = test_site();
  auto r = respond(request("GET", "/healthz"), site);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  r = respond(request("GET", "/metrics"), site);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, "# metrics\n");
  r = respond(request("HEAD", "/"), site);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(respond(request("GET", "/nope"), site).status, 404);
  EXPECT_EQ(respond(request("GET", "/metrics/"), site).status, 404);
  EXPECT_EQ(respond(request("GET", "/healthz"), test_site(false)).status, 503);
}

TEST(HttpRespond, Rfc9110_15_5_6_MethodNotAllowedHasAllow) {
  for (const char* method : {"POST", "PUT", "DELETE", "get", "OPTIONS"}) {
    const auto r = respond(request(method, "/metrics"), test_site());
    EXPECT_EQ(r.status, 405) << method;
    ASSERT_EQ(r.fields.size(), 1u) << method;
    EXPECT_EQ(r.fields[0].first, "Allow");
    EXPECT_EQ(r.fields[0].second, "GET, HEAD");
  }
}

TEST(HttpRender, StatusLineLengthAndHead) {
  Response r;
  r.body = "ok\n";
  const auto full = render(r);
  EXPECT_TRUE(full.starts_with("HTTP/1.1 200 OK\r\n")) << full;
  EXPECT_NE(full.find("\r\nContent-Length: 3\r\n"), std::string::npos) << full;
  EXPECT_NE(full.find("\r\nConnection: close\r\n"), std::string::npos) << full;
  EXPECT_TRUE(full.ends_with("\r\n\r\nok\n")) << full;
  // RFC 9110 §9.3.2: HEAD gets the same fields, Content-Length included, no content.
  const auto head = render(r, /*head_only=*/true);
  EXPECT_EQ(head, full.substr(0, full.size() - 3));
  EXPECT_TRUE(render(error_response(404)).starts_with("HTTP/1.1 404 Not Found\r\n"));
}

}  // namespace
}  // namespace hikyaku::http::protocol
