#include "delivery/state/destination_pace.hpp"

#include <algorithm>

namespace hikyaku::delivery::state {

namespace {

unsigned normal_of(const PaceOptions& o) { return std::max(1u, o.normal); }

std::chrono::milliseconds first_pause(const PaceOptions& o) {
  return std::max(o.pause, std::chrono::milliseconds(1));
}

std::chrono::milliseconds cap(const PaceOptions& o) { return std::max(first_pause(o), o.max_pause()); }

// Whole seconds, rounded up (the file keeps seconds: a pause must not end
// early because of it).
DestinationPace::TimePoint ceil_seconds(DestinationPace::TimePoint t) {
  auto s = std::chrono::ceil<std::chrono::seconds>(t.time_since_epoch());
  return DestinationPace::TimePoint(s);
}

}  // namespace

bool DestinationPace::rate_limited(TimePoint now, const PaceOptions& o) {
  switch (phase(now)) {
    case Phase::paused:
      // A connection that began before the pause: the same episode.
      return false;
    case Phase::normal:
      pause_ = first_pause(o);
      break;
    case Phase::ramping:
      // Still too fast at one (or a few) connection(s): a longer pause.
      pause_ = std::min(std::max(pause_, first_pause(o)) * 2, cap(o));
      break;
  }
  limited_ = true;
  paused_until_ = now + pause_;
  connections_ = 1;
  until_ = paused_until_ + o.lifetime;
  return true;
}

bool DestinationPace::succeeded(TimePoint now, const PaceOptions& o) {
  if (phase(now) != Phase::ramping) return false;
  ++connections_;
  until_ = now + o.lifetime;
  if (connections_ >= normal_of(o)) *this = DestinationPace{};  // back to normal
  return true;
}

bool DestinationPace::expire(TimePoint now) {
  if (!limited_ || now < until_) return false;
  *this = DestinationPace{};
  return true;
}

DestinationPace::Phase DestinationPace::phase(TimePoint now) const {
  if (!limited_) return Phase::normal;
  return now < paused_until_ ? Phase::paused : Phase::ramping;
}

unsigned DestinationPace::allowed(TimePoint now, const PaceOptions& o) const {
  switch (phase(now)) {
    case Phase::paused:
      return 0;
    case Phase::ramping:
      return std::min(connections_, normal_of(o));
    case Phase::normal:
      break;
  }
  return normal_of(o);
}

DestinationPace::TimePoint DestinationPace::next_start(TimePoint now) const {
  return phase(now) == Phase::paused ? paused_until_ : now;
}

DestinationState DestinationPace::saved(const std::string& domain) const {
  DestinationState s;
  s.domain = domain;
  s.pause = pause_;
  s.paused_until = ceil_seconds(paused_until_);
  s.connections = connections_;
  s.until = ceil_seconds(until_);
  return s;
}

DestinationPace DestinationPace::restore(const DestinationState& s, TimePoint now, const PaceOptions& o) {
  DestinationPace p;
  p.limited_ = true;
  p.pause_ = s.pause.count() == 0 ? first_pause(o) : std::clamp(s.pause, first_pause(o), cap(o));
  // A pause never outlasts the longest one the options allow (a clock
  // step or an edited file must not stop a destination for days).
  p.paused_until_ = std::min(s.paused_until, now + cap(o));
  p.connections_ = std::clamp(s.connections, 1u, normal_of(o));
  p.until_ = std::min(s.until, std::max(p.paused_until_, now) + o.lifetime);
  if (p.connections_ >= normal_of(o) && p.phase(now) == Phase::ramping) return DestinationPace{};
  return p;
}

}  // namespace hikyaku::delivery::state
