// Purpose:   Where work runs, without naming Asio: components below the
//            session layer (intake, delivery) receive the executors they
//            may use — the event loop, the blocking pool — as this small
//            interface, and `app` decides which threads stand behind them
//            (docs/ARCHITECTURE.md, "Threads"). Tests use InlineExecutor.
// Concurrency: post() is thread-safe in every implementation; the work runs
//            later (or, for InlineExecutor, at once on the caller's thread).
// Errors:    none; work that throws is a bug.
#pragma once

#include <functional>

namespace hikyaku::base {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual void post(std::function<void()> work) = 0;
};

// Runs the work at once, on the caller's thread (tests, and single-threaded
// tools).
class InlineExecutor final : public Executor {
 public:
  void post(std::function<void()> work) override { work(); }
};

}  // namespace hikyaku::base
