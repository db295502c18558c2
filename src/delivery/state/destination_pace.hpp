// Purpose:   The pace of one destination after a rate-limit reply, as Gmail
//            asks (its sender guidelines on 421 4.7.28): stop for at least
//            `pause` (no connection at all), then resume with ONE connection
//            and allow one more concurrent connection after each success, up
//            to the normal per-destination concurrency (then back to normal).
//            A further rate-limit reply during that ramp pauses again, for
//            twice the last pause, up to kMaxPauseFactor times `pause`; a
//            rate-limit reply while already paused (a connection that began
//            before the pause) changes nothing. A limited destination without
//            news (no rate-limit reply, no success) for `lifetime` after its
//            pause ended is forgotten (back to normal). A pure state machine:
//            events (rate_limited, succeeded, expire) and queries (phase,
//            allowed, next_start) take the time as an argument; the SmtpAgent
//            applies it and keeps it in DATA_DIR/state/destinations
//            (saved()/restore(), destination_state.hpp).
// Standards: none (Gmail's guidance; RFC 3463 4.7.28 is classified by
//            smtp/client/outcome.hpp is_rate_limit).
// Trust:     values only; a restored state is clamped to the options.
// Concurrency: none inside; the owner serialises access (the agent's io
//            thread).
// Errors:    none.
#pragma once

#include <chrono>
#include <string>

#include "delivery/state/destination_state.hpp"

namespace hikyaku::delivery::state {

// A repeat doubles the pause up to this many times the configured one
// (10 min → 20 → 40 → 80 min with the default).
inline constexpr unsigned kMaxPauseFactor = 8;

struct PaceOptions {
  std::chrono::milliseconds pause{std::chrono::minutes(10)};  // [delivery] rate_limit_pause
  unsigned normal = 10;                                       // [delivery] concurrency_per_domain
  std::chrono::seconds lifetime{std::chrono::hours(1)};       // without news after the pause: forgotten

  std::chrono::milliseconds max_pause() const { return pause * kMaxPauseFactor; }
};

class DestinationPace {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  enum class Phase { normal, paused, ramping };

  // Events. Each returns whether the state changed (then the caller saves
  // it); `now` never goes backwards for one destination in practice, but a
  // step back is harmless (a pause lasts longer).
  // A rate-limit reply: normal → paused for `pause`; ramping → paused for
  // twice the last pause (capped); paused → unchanged.
  bool rate_limited(TimePoint now, const PaceOptions& o);
  // A delivered message: ramping → one more connection allowed (normal once
  // it reaches o.normal); paused or normal → unchanged.
  bool succeeded(TimePoint now, const PaceOptions& o);
  // Time passing: a limited destination whose `until` has passed is
  // forgotten (normal). true when that happened.
  bool expire(TimePoint now);

  // Queries.
  Phase phase(TimePoint now) const;
  // Connections allowed at once now: 0 while paused, the ramp's count while
  // ramping, o.normal (at least 1) when normal.
  unsigned allowed(TimePoint now, const PaceOptions& o) const;
  bool may_start(TimePoint now, unsigned active, const PaceOptions& o) const { return active < allowed(now, o); }
  // The earliest time a new connection may start: the end of the pause, or
  // `now`.
  TimePoint next_start(TimePoint now) const;
  bool limited() const { return limited_; }
  std::chrono::milliseconds pause() const { return pause_; }
  TimePoint paused_until() const { return paused_until_; }
  TimePoint until() const { return until_; }

  // The durable form (only while limited()) and back. restore() clamps what
  // it reads: the pause to [o.pause, o.max_pause()] (0, a version 1 file:
  // o.pause), the end of the pause to at most now + o.max_pause(), the
  // connections to [1, o.normal].
  DestinationState saved(const std::string& domain) const;
  static DestinationPace restore(const DestinationState& s, TimePoint now, const PaceOptions& o);

 private:
  bool limited_ = false;
  std::chrono::milliseconds pause_{0};  // the last pause (a repeat doubles it)
  TimePoint paused_until_{};            // no connection before this
  unsigned connections_ = 1;            // allowed at once after the pause
  TimePoint until_{};                   // forgotten after this without news
};

}  // namespace hikyaku::delivery::state
