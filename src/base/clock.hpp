// Purpose:   An injectable clock (STYLE R10): the scheduler, retry policy,
//            SRS timestamps and DKIM expiry take time from a Clock so tests
//            can move time without sleeping.
// Concurrency: SystemClock is stateless; FakeClock is not thread-safe.
#pragma once

#include <chrono>

namespace hikyaku::base {

class Clock {
 public:
  using time_point = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

class SystemClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::system_clock::now(); }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(time_point start) : now_(start) {}
  time_point now() const override { return now_; }
  void advance(std::chrono::nanoseconds d) { now_ += std::chrono::duration_cast<time_point::duration>(d); }
  void set(time_point t) { now_ = t; }

 private:
  time_point now_;
};

}  // namespace hikyaku::base
