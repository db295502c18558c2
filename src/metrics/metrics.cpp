#include "metrics/metrics.hpp"

#include <fmt/format.h>

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

}  // namespace

std::string render_status_page(const Snapshot& s, std::string_view hostname) {
  std::string out;
  auto row = [&out](std::string_view name, auto value) {
    fmt::format_to(std::back_inserter(out), "<tr><th>{}</th><td>{}</td></tr>\n", name, value);
  };
  const std::string host = html_escape(hostname);
  fmt::format_to(std::back_inserter(out),
                 "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<title>hikyaku on {}</title>\n"
                 "<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}"
                 "th,td{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}td{{text-align:right}}</style>"
                 "</head><body>\n<h1>hikyaku on {}</h1>\n",
                 host, host);
  out += "<h2>Now</h2>\n<table>\n";
  row("spool", s.spool_writable ? "writable" : "NOT WRITABLE");
  row("messages in the queue", s.queue_messages);
  for (size_t p = 0; p < kProtocols.size(); ++p) row(fmt::format("open {} connections", kProtocols[p]), s.connections[p]);
  out += "</table>\n<h2>Since start</h2>\n<table>\n";
  row("messages received", s.messages_received);
  for (size_t t = 0; t < kTargets.size(); ++t)
    for (size_t o = 0; o < kOutcomes.size(); ++o)
      if (s.deliveries[t][o] != 0 || t != 2) row(fmt::format("{} {}", kTargets[t], kOutcomes[o]), s.deliveries[t][o]);
  row("forward attempts", s.forward_count);
  row("mean forward time (s)",
      s.forward_count == 0 ? std::string("-") : fmt::format("{:.3f}", s.forward_seconds_sum / s.forward_count));
  for (size_t p = 0; p < kProtocols.size(); ++p) row(fmt::format("{} login failures", kProtocols[p]), s.auth_failures[p]);
  row("DNS lookups (resolver)", s.dns_queries);
  row("DNS lookups (cache)", s.dns_cached);
  out += "</table>\n<p>The same numbers for Prometheus: <a href=\"/metrics\">/metrics</a>; "
         "liveness: <a href=\"/healthz\">/healthz</a>. Counters start at zero with each start of the server. "
         "History charts (a day and a week of deliveries and diversions) are later work (issue 16).</p>\n"
         "</body></html>\n";
  return out;
}

}  // namespace hikyaku::metrics
