#include "metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

namespace hikyaku::metrics {
namespace {

// The samples of an exposition: "name{labels}" → value text; and every
// family's TYPE.
struct Parsed {
  std::map<std::string, std::string> samples;
  std::map<std::string, std::string> types;
  std::map<std::string, std::string> helps;
};

Parsed parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("# TYPE ")) {
      const auto rest = line.substr(7);
      p.types[rest.substr(0, rest.find(' '))] = rest.substr(rest.find(' ') + 1);
    } else if (line.starts_with("# HELP ")) {
      const auto rest = line.substr(7);
      p.helps[rest.substr(0, rest.find(' '))] = rest.substr(rest.find(' ') + 1);
    } else {
      const auto sp = line.rfind(' ');
      p.samples[line.substr(0, sp)] = line.substr(sp + 1);
    }
  }
  return p;
}

TEST(Metrics, PrometheusExposition004) {
  Metrics m;
  m.message_received();
  m.message_received();
  m.delivery(Target::forward, Outcome::delivered);
  m.delivery(Target::mailbox, Outcome::delivered);
  m.delivery(Target::forward, Outcome::diverted);
  m.forward_duration(0.2);
  m.forward_duration(0.3);
  m.forward_duration(1000);  // only +Inf
  m.auth_failure(Protocol::imap);
  Snapshot s = m.snapshot();
  s.queue_messages = 3;
  s.connections = {1, 0, 2, 0};
  s.dns_queries = 7;
  const std::string text = render_prometheus(s);
  ASSERT_TRUE(text.ends_with("\n"));
  const Parsed p = parse(text);

  EXPECT_EQ(p.samples.at("hikyaku_messages_received_total"), "2");
  EXPECT_EQ(p.samples.at("hikyaku_deliveries_total{target=\"forward\",result=\"delivered\"}"), "1");
  EXPECT_EQ(p.samples.at("hikyaku_deliveries_total{target=\"forward\",result=\"diverted\"}"), "1");
  EXPECT_EQ(p.samples.at("hikyaku_deliveries_total{target=\"mailbox\",result=\"delivered\"}"), "1");
  EXPECT_EQ(p.samples.at("hikyaku_deliveries_total{target=\"mailbox\",result=\"failed\"}"), "0");
  // Histogram buckets are cumulative and end in +Inf = _count.
  EXPECT_EQ(p.samples.at("hikyaku_forward_duration_seconds_bucket{le=\"0.1\"}"), "0");
  EXPECT_EQ(p.samples.at("hikyaku_forward_duration_seconds_bucket{le=\"0.25\"}"), "1");
  EXPECT_EQ(p.samples.at("hikyaku_forward_duration_seconds_bucket{le=\"0.5\"}"), "2");
  EXPECT_EQ(p.samples.at("hikyaku_forward_duration_seconds_bucket{le=\"300\"}"), "2");
  EXPECT_EQ(p.samples.at("hikyaku_forward_duration_seconds_bucket{le=\"+Inf\"}"), "3");
  EXPECT_EQ(p.samples.at("hikyaku_forward_duration_seconds_count"), "3");
  EXPECT_EQ(p.samples.at("hikyaku_forward_duration_seconds_sum"), "1000.5");
  EXPECT_EQ(p.samples.at("hikyaku_queue_messages"), "3");
  EXPECT_EQ(p.samples.at("hikyaku_connections{protocol=\"pop3\"}"), "2");
  EXPECT_EQ(p.samples.at("hikyaku_auth_failures_total{protocol=\"imap\"}"), "1");
  EXPECT_EQ(p.samples.at("hikyaku_dns_queries_total{result=\"upstream\"}"), "7");

  // Every family has HELP and TYPE; counters end in _total; gauges do not.
  EXPECT_EQ(p.types.size(), p.helps.size());
  for (const auto& [name, type] : p.types) {
    EXPECT_EQ(name.ends_with("_total"), type == "counter") << name;
    EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << name << " " << type;
  }
  EXPECT_EQ(p.types.at("hikyaku_forward_duration_seconds"), "histogram");
  EXPECT_EQ(p.types.at("hikyaku_connections"), "gauge");
  // Every sample belongs to a declared family.
  for (const auto& [sample, value] : p.samples) {
    std::string name = sample.substr(0, sample.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!p.types.contains(name) && name.ends_with(suffix)) name.resize(name.size() - std::string(suffix).size());
    EXPECT_TRUE(p.types.contains(name)) << sample;
  }
}

TEST(Metrics, StatusPageIsSelfContainedAndEscaped) {
  Metrics m;
  m.message_received();
  Snapshot s = m.snapshot();
  s.queue_messages = 5;
  const std::string page = render_status_page(s, nullptr, "mx.<example>.com");
  EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
  EXPECT_NE(page.find("mx.&lt;example&gt;.com"), std::string::npos);
  EXPECT_EQ(page.find("<example>"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("src="), std::string::npos);  // no external assets
  EXPECT_NE(page.find("<tr><th>messages in the queue</th><td>5</td></tr>"), std::string::npos);
  EXPECT_NE(page.find("<tr><th>messages received</th><td>1</td></tr>"), std::string::npos);
  EXPECT_EQ(page.find("<svg"), std::string::npos);  // no history, no chart
}

TEST(Metrics, StatusPageChartsTheHistoryAndListsDiversions) {
  history::Summary h;
  h.first_hour = std::chrono::sys_days(std::chrono::year(2026) / 12 / 1) + std::chrono::hours(5);
  h.hours[history::Summary::kHours - 1] = {7, 2, 1};
  h.hours[0] = {3, 0, 0};
  h.forward_attempts = 13;
  h.p50 = 0.5;
  h.p90 = 1.25;
  h.p99 = 2;
  h.diversions.push_back(history::Summary::Diversion{h.first_hour, "Eve <eve@example.org>", "<b>win</b> & more",
                                                     "5.7.1 spam", "mailbox:fallback"});
  const std::string page = render_status_page(Metrics().snapshot(), &h, "mx.example.com");
  EXPECT_NE(page.find("<svg viewBox="), std::string::npos);
  EXPECT_NE(page.find("10 forwarded, 2 diverted, 1 deferred"), std::string::npos);
  EXPECT_NE(page.find("<text x=\"40\" y=\"24\" text-anchor=\"end\">10</text>"), std::string::npos);  // the top
  EXPECT_NE(page.find(">Dec 02</text>"), std::string::npos);  // a day line at midnight
  EXPECT_NE(page.find("<title>2026-12-01 05:00 UTC: 3 forwarded</title>"), std::string::npos);
  EXPECT_NE(page.find("p50 0.500 s, p90 1.250 s, p99 2.000 s"), std::string::npos);
  EXPECT_NE(page.find("<td>2026-12-01 05:00</td><td>Eve &lt;eve@example.org&gt;</td>"
                      "<td>&lt;b&gt;win&lt;/b&gt; &amp; more</td><td>5.7.1 spam</td><td>fallback</td>"),
            std::string::npos);
  EXPECT_EQ(page.find("<b>win"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
}

TEST(Metrics, RestoreCountsOnFromTheHistory) {
  Metrics m;
  history::Totals t;
  t.received = 4;
  t.attempts = {{"forward", "diverted", 2}, {"mailbox", "delivered", 3}, {"carrier-pigeon", "delivered", 9}};
  m.restore(t);
  m.delivery(Target::forward, Outcome::diverted);
  const Snapshot s = m.snapshot();
  EXPECT_EQ(s.messages_received, 4u);
  EXPECT_EQ(s.deliveries[1][2], 3u);
  EXPECT_EQ(s.deliveries[0][0], 3u);
}

}  // namespace
}  // namespace hikyaku::metrics
