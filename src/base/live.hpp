// Purpose:   One immutable value that is replaced as a whole while the
//            program runs (the configuration and what is derived from it,
//            on `hikyaku reload`): a reader takes the current one with get()
//            and keeps it, unchanged, for as long as it holds the pointer —
//            a transaction, a delivery attempt — even if replace() installs
//            a newer one meanwhile. The old value is freed when its last
//            reader lets go. (Envoy's runtime snapshots, Postfix's "a
//            process keeps the main.cf it started with".)
// Concurrency: get() and replace() are thread-safe; the values are const.
// Errors:    none.
#pragma once

#include <memory>
#include <mutex>
#include <utility>

namespace hikyaku::base {

template <typename T>
class Live {
 public:
  explicit Live(std::shared_ptr<const T> first) : current_(std::move(first)) {}
  Live(const Live&) = delete;
  Live& operator=(const Live&) = delete;

  std::shared_ptr<const T> get() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  // Installs `next`; the previous value lives on in its readers' hands
  // (and is destroyed by the last of them, outside the lock).
  void replace(std::shared_ptr<const T> next) {
    {
      std::lock_guard lock(mu_);
      current_.swap(next);
    }
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> current_;
};

}  // namespace hikyaku::base
