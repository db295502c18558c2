#include "metrics/metrics.hpp"

#include <fmt/format.h>

#include <fmt/chrono.h>

#include <algorithm>
#include <cmath>
#include <iterator>

namespace hikyaku::metrics {

void Metrics::forward_duration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // NaN or a clock step: count it, as 0
  size_t bucket = kDurationBuckets.size();  // +Inf
  for (size_t i = 0; i < kDurationBuckets.size(); ++i) {
    if (seconds <= kDurationBuckets[i]) {
      bucket = i;
      break;
    }
  }
  forward_buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  forward_micros_.fetch_add(static_cast<uint64_t>(std::llround(seconds * 1e6)), std::memory_order_relaxed);
}

void Metrics::restore(const history::Totals& totals) {
  messages_received_.fetch_add(totals.received, std::memory_order_relaxed);
  for (const auto& [target, outcome, n] : totals.attempts) {
    const auto t = std::find(kTargets.begin(), kTargets.end(), target);
    const auto o = std::find(kOutcomes.begin(), kOutcomes.end(), outcome);
    if (t == kTargets.end() || o == kOutcomes.end()) continue;  // a word of another version
    deliveries_[static_cast<size_t>(t - kTargets.begin())][static_cast<size_t>(o - kOutcomes.begin())].fetch_add(
        n, std::memory_order_relaxed);
  }
}

Snapshot Metrics::snapshot() const {
  Snapshot s;
  s.messages_received = messages_received_.load(std::memory_order_relaxed);
  for (size_t t = 0; t < kTargets.size(); ++t)
    for (size_t o = 0; o < kOutcomes.size(); ++o) s.deliveries[t][o] = deliveries_[t][o].load(std::memory_order_relaxed);
  for (size_t b = 0; b < forward_buckets_.size(); ++b) {
    s.forward_buckets[b] = forward_buckets_[b].load(std::memory_order_relaxed);
    s.forward_count += s.forward_buckets[b];
  }
  s.forward_seconds_sum = static_cast<double>(forward_micros_.load(std::memory_order_relaxed)) / 1e6;
  for (size_t p = 0; p < kProtocols.size(); ++p) s.auth_failures[p] = auth_failures_[p].load(std::memory_order_relaxed);
  return s;
}

namespace {

// A float as Prometheus writes it: shortest round-trip form, "+Inf".
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string render_prometheus(const Snapshot& s) {
  std::string out;
  auto line = [&out](std::string_view name, std::string_view labels, auto value) {
    if (labels.empty()) fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
    else fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, value);
  };
  family(out, "hikyaku_messages_received_total", "counter", "Messages accepted and committed to the spool.");
  line("hikyaku_messages_received_total", "", s.messages_received);

  family(out, "hikyaku_deliveries_total", "counter",
         "Settled delivery attempts by target kind and what the delivery policy made of them.");
  for (size_t t = 0; t < kTargets.size(); ++t)
    for (size_t o = 0; o < kOutcomes.size(); ++o)
      line("hikyaku_deliveries_total", fmt::format("target=\"{}\",result=\"{}\"", kTargets[t], kOutcomes[o]),
           s.deliveries[t][o]);

  family(out, "hikyaku_forward_duration_seconds", "histogram",
         "Duration of forward attempts, from hand-over to the SMTP client to its result.");
  uint64_t cumulative = 0;
  for (size_t b = 0; b < s.forward_buckets.size(); ++b) {
    cumulative += s.forward_buckets[b];
    const double le = b < kDurationBuckets.size() ? kDurationBuckets[b] : INFINITY;
    line("hikyaku_forward_duration_seconds_bucket", fmt::format("le=\"{}\"", number(le)), cumulative);
  }
  line("hikyaku_forward_duration_seconds_sum", "", number(s.forward_seconds_sum));
  line("hikyaku_forward_duration_seconds_count", "", s.forward_count);

  family(out, "hikyaku_queue_messages", "gauge", "Messages in the queue (spooled, not yet finished).");
  line("hikyaku_queue_messages", "", s.queue_messages);

  family(out, "hikyaku_connections", "gauge", "Open client connections by listener family.");
  for (size_t p = 0; p < kProtocols.size(); ++p)
    line("hikyaku_connections", fmt::format("protocol=\"{}\"", kProtocols[p]), s.connections[p]);

  family(out, "hikyaku_auth_failures_total", "counter", "Failed logins by protocol (POP3, IMAP, submission AUTH).");
  for (size_t p = 0; p < kProtocols.size(); ++p)
    line("hikyaku_auth_failures_total", fmt::format("protocol=\"{}\"", kProtocols[p]), s.auth_failures[p]);

  family(out, "hikyaku_dns_queries_total", "counter",
         "DNS lookups, answered by the resolver (result=\"upstream\") or the answer cache (result=\"cached\").");
  line("hikyaku_dns_queries_total", "result=\"upstream\"", s.dns_queries);
  line("hikyaku_dns_queries_total", "result=\"cached\"", s.dns_cached);

  family(out, "hikyaku_destinations_slowed_down", "gauge",
         "Destinations paused or ramping up after a rate-limit reply.");
  line("hikyaku_destinations_slowed_down", "", s.slowed_down.size());

  family(out, "hikyaku_spool_writable", "gauge", "1 when the spool directory accepts new files.");
  line("hikyaku_spool_writable", "", s.spool_writable ? 1 : 0);
  return out;
}

namespace {

std::string html_escape(std::string_view in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// "2026-12-05 13:04" (UTC).
std::string minute_of(history::TimePoint t) {
  return fmt::format("{:%Y-%m-%d %H:%M}", std::chrono::floor<std::chrono::minutes>(t));
}

std::string seconds_text(double s) { return s < 0 ? std::string("-") : fmt::format("{:.3f} s", s); }

// The smallest of 1, 2, 5 × 10^n at or above `n` (the chart's top).
uint32_t nice_top(uint32_t n) {
  uint32_t scale = 1;
  for (;;) {
    for (uint32_t m : {1u, 2u, 5u}) {
      if (m * scale >= n) return m * scale;
    }
    scale *= 10;
  }
}

// Forwards delivered, diverted and deferred per hour, stacked bars in that
// order from the bottom; a line and a date at each midnight (UTC).
void render_chart(std::string& out, const history::Summary& h) {
  // 4 units an hour; labels large enough to read on a phone, where the
  // whole width shrinks to about half.
  constexpr int kBar = 4, kLeft = 44, kTop = 10, kPlot = 140, kFont = 16;
  constexpr int kWidth = kLeft + kBar * static_cast<int>(history::Summary::kHours) + 8;
  constexpr std::array<std::string_view, 3> kColour{"#2e7d32", "#ef6c00", "#9e9e9e"};
  constexpr std::array<std::string_view, 3> kWord{"forwarded", "diverted", "deferred"};
  std::array<uint64_t, 3> totals{};
  uint32_t highest = 0;
  for (const auto& hour : h.hours) {
    highest = std::max(highest, hour[0] + hour[1] + hour[2]);
    for (size_t k = 0; k < 3; ++k) totals[k] += hour[k];
  }
  const uint32_t top = nice_top(std::max(highest, 1u));
  fmt::format_to(std::back_inserter(out),
                 "<svg viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\" aria-label=\"forwards per hour, last 7 days: "
                 "{} forwarded, {} diverted, {} deferred\" style=\"max-width:{}px\">\n",
                 kWidth, kTop + kPlot + kFont + 8, totals[0], totals[1], totals[2], kWidth * 2);
  fmt::format_to(std::back_inserter(out),
                 "<g font-size=\"{}\" fill=\"#555\"><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>"
                 "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text></g>\n"
                 "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>\n",
                 kFont, kLeft - 4, kTop + kFont - 2, top, kLeft - 4, kTop + kPlot, kLeft, kTop + kPlot, kWidth - 8,
                 kTop + kPlot);
  for (size_t i = 0; i < h.hours.size(); ++i) {
    const auto hour_start = h.first_hour + std::chrono::hours(i);
    const int x = kLeft + kBar * static_cast<int>(i);
    if (std::chrono::floor<std::chrono::days>(hour_start) == hour_start) {
      fmt::format_to(std::back_inserter(out),
                     "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#ddd\"/>"
                     "<text x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"#555\">{:%b %d}</text>\n",
                     x, kTop, x, kTop + kPlot, x + 2, kTop + kPlot + kFont + 2, kFont, hour_start);
    }
    double y = kTop + kPlot;
    for (size_t k = 0; k < 3; ++k) {
      const uint32_t n = h.hours[i][k];
      if (n == 0) continue;
      const double height = static_cast<double>(kPlot) * n / top;
      y -= height;
      fmt::format_to(std::back_inserter(out),
                     "<rect x=\"{}\" y=\"{:.1f}\" width=\"{}\" height=\"{:.1f}\" fill=\"{}\">"
                     "<title>{:%Y-%m-%d %H}:00 UTC: {} {}</title></rect>\n",
                     x, y, kBar - 1, height, kColour[k], hour_start, n, kWord[k]);
    }
  }
  out += "</svg>\n<p class=\"legend\">";
  for (size_t k = 0; k < 3; ++k) {
    fmt::format_to(std::back_inserter(out), "<span style=\"color:{}\">&#9632;</span> {} {}{}", kColour[k], totals[k],
                   kWord[k], k < 2 ? " &middot; " : "");
  }
  out += " (forward attempts per hour, UTC)</p>\n";
}

}  // namespace

std::string render_status_page(const Snapshot& s, const history::Summary* history, std::string_view hostname) {
  std::string out;
  auto row = [&out](std::string_view name, auto value) {
    fmt::format_to(std::back_inserter(out), "<tr><th>{}</th><td>{}</td></tr>\n", name, value);
  };
  const std::string host = html_escape(hostname);
  fmt::format_to(std::back_inserter(out),
                 "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                 "<title>hikyaku on {}</title>\n"
                 "<style>body{{font-family:sans-serif;margin:1em;max-width:60em}}"
                 "table{{border-collapse:collapse;margin-bottom:1.5em}}"
                 "th,td{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}td{{text-align:right}}"
                 "table.list td{{text-align:left;word-break:break-word}}.scroll{{overflow-x:auto}}</style>"
                 "</head><body>\n<h1>hikyaku on {}</h1>\n",
                 host, host);
  if (history != nullptr) {
    out += "<h2>Last 7 days</h2>\n";
    render_chart(out, *history);
    fmt::format_to(std::back_inserter(out),
                   "<p>Forward latency over {} attempts: p50 {}, p90 {}, p99 {}.</p>\n", history->forward_attempts,
                   seconds_text(history->p50), seconds_text(history->p90), seconds_text(history->p99));
    if (history->forwards_delivered != 0) {
      fmt::format_to(std::back_inserter(out), "<p>Delivered over TLS: {:.0f} % ({} of {} forwards).</p>\n",
                     100.0 * static_cast<double>(history->forwards_delivered_tls) /
                         static_cast<double>(history->forwards_delivered),
                     history->forwards_delivered_tls, history->forwards_delivered);
    }
    out += "<h2>Diverted messages</h2>\n";
    if (history->diversions.empty()) {
      out += "<p>None in the history.</p>\n";
    } else {
      out += "<div class=\"scroll\"><table class=\"list\">\n<tr><th>date (UTC)</th><th>From</th><th>Subject</th>"
             "<th>reason</th><th>kept in</th></tr>\n";
      for (const auto& d : history->diversions) {
        std::string_view kept = d.mailbox;
        if (kept.starts_with("mailbox:")) kept.remove_prefix(8);
        fmt::format_to(std::back_inserter(out), "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       minute_of(d.time), html_escape(d.from), html_escape(d.subject), html_escape(d.reason),
                       html_escape(kept));
      }
      out += "</table></div>\n";
    }
    if (history->dropped != 0)
      fmt::format_to(std::back_inserter(out), "<p>{} history rows were dropped (the writer fell behind).</p>\n",
                     history->dropped);
  }
  out += "<h2>Now</h2>\n<table>\n";
  row("spool", s.spool_writable ? "writable" : "NOT WRITABLE");
  row("messages in the queue", s.queue_messages);
  for (size_t p = 0; p < kProtocols.size(); ++p) row(fmt::format("open {} connections", kProtocols[p]), s.connections[p]);
  for (const auto& [domain, state] : s.slowed_down)
    row(fmt::format("rate-limit slow-down: {}", html_escape(domain)), html_escape(state));
  if (s.slowed_down.empty()) row("destinations in a rate-limit slow-down", "none");
  out += "</table>\n<h2>Counters</h2>\n<table>\n";
  row("messages received", s.messages_received);
  for (size_t t = 0; t < kTargets.size(); ++t)
    for (size_t o = 0; o < kOutcomes.size(); ++o)
      if (s.deliveries[t][o] != 0 || t != 2) row(fmt::format("{} {}", kTargets[t], kOutcomes[o]), s.deliveries[t][o]);
  row("forward attempts since start", s.forward_count);
  row("mean forward time since start (s)",
      s.forward_count == 0 ? std::string("-") : fmt::format("{:.3f}", s.forward_seconds_sum / s.forward_count));
  for (size_t p = 0; p < kProtocols.size(); ++p) row(fmt::format("{} login failures", kProtocols[p]), s.auth_failures[p]);
  row("DNS lookups (resolver)", s.dns_queries);
  row("DNS lookups (cache)", s.dns_cached);
  out += "</table>\n<p>The same numbers for Prometheus: <a href=\"/metrics\">/metrics</a>; "
         "liveness: <a href=\"/healthz\">/healthz</a>. Messages received and deliveries count on from the "
         "delivery history at each start (its retention bounds them); the others start at zero.</p>\n"
         "</body></html>\n";
  return out;
}

}  // namespace hikyaku::metrics
