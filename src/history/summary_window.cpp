#include "history/summary_window.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace hikyaku::history {

namespace {

constexpr auto kHour = std::chrono::hours(1);

TimePoint first_hour_for(TimePoint now) {
  const TimePoint hour(std::chrono::duration_cast<std::chrono::hours>(now.time_since_epoch()));
  return hour - static_cast<int>(Summary::kHours - 1) * kHour;
}

// The nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return -1;
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// A diversion listed before its message's row was written.
bool unnamed(const Summary::Diversion& d) { return d.from.empty() && d.subject.empty(); }

}  // namespace

SummaryWindow::SummaryWindow(TimePoint now) : first_hour_(first_hour_for(now)) {}

void SummaryWindow::advance(TimePoint now) {
  const TimePoint first = first_hour_for(now);
  if (first <= first_hour_) return;
  const auto shift = static_cast<size_t>((first - first_hour_) / kHour);
  if (shift >= Summary::kHours) {
    hours_ = {};
  } else {
    std::move(hours_.begin() + static_cast<std::ptrdiff_t>(shift), hours_.end(), hours_.begin());
    std::fill(hours_.end() - static_cast<std::ptrdiff_t>(shift), hours_.end(), std::array<uint64_t, kColumns>{});
  }
  first_hour_ = first;
  while (!latency_.empty() && latency_.front().first < first_hour_) latency_.pop_front();
}

void SummaryWindow::add_forwards(TimePoint time, std::string_view result, uint64_t n, uint64_t tls) {
  if (time < first_hour_) return;
  if (time >= first_hour_ + static_cast<int>(Summary::kHours) * kHour) advance(time);
  auto& hour = hours_[static_cast<size_t>((time - first_hour_) / kHour)];
  hour[kAttempts] += n;
  if (result == "delivered") {
    hour[kDelivered] += n;
    hour[kDeliveredTls] += tls;
  } else if (result == "diverted") {
    hour[kDiverted] += n;
  } else if (result == "deferred") {
    hour[kDeferred] += n;
  }
}

void SummaryWindow::add_latency(TimePoint time, double seconds) {
  if (time < first_hour_ || seconds < 0) return;
  latency_.emplace_back(time, seconds);
  if (latency_.size() > kLatencySamples) latency_.pop_front();
}

void SummaryWindow::add_diversion(std::string queue_id, Summary::Diversion d) {
  diversions_.emplace_front(std::move(queue_id), std::move(d));
  if (diversions_.size() > Summary::kDiversions) diversions_.pop_back();
}

void SummaryWindow::add_oldest_diversion(std::string queue_id, Summary::Diversion d) {
  if (diversions_.size() >= Summary::kDiversions) return;
  diversions_.emplace_back(std::move(queue_id), std::move(d));
}

void SummaryWindow::name_diversions(const std::string& queue_id, const std::string& from,
                                    const std::string& subject) {
  // At most kDiversions entries: a walk per received row costs less than
  // keeping a count of the unnamed ones right.
  if (from.empty() && subject.empty()) return;
  for (auto& [id, d] : diversions_) {
    if (id != queue_id || !unnamed(d)) continue;
    d.from = from;
    d.subject = subject;
  }
}

void SummaryWindow::prune_diversions(TimePoint before) {
  while (!diversions_.empty() && diversions_.back().second.time < before) diversions_.pop_back();
}

Summary SummaryWindow::summary() const {
  Summary s;
  s.first_hour = first_hour_;
  for (size_t h = 0; h < Summary::kHours; ++h) {
    const auto& hour = hours_[h];
    s.hours[h] = {static_cast<uint32_t>(hour[kDelivered]), static_cast<uint32_t>(hour[kDiverted]),
                  static_cast<uint32_t>(hour[kDeferred])};
    s.forward_attempts += hour[kAttempts];
    s.forwards_delivered += hour[kDelivered];
    s.forwards_delivered_tls += hour[kDeliveredTls];
  }
  std::vector<double> seconds;
  seconds.reserve(latency_.size());
  for (const auto& [time, value] : latency_) seconds.push_back(value);
  std::sort(seconds.begin(), seconds.end());
  s.p50 = percentile(seconds, 0.50);
  s.p90 = percentile(seconds, 0.90);
  s.p99 = percentile(seconds, 0.99);
  s.diversions.reserve(diversions_.size());
  for (const auto& [id, d] : diversions_) s.diversions.push_back(d);
  return s;
}

}  // namespace hikyaku::history
