// Purpose:   Result<T>: a value or an Error, for expected runtime failures that
//            cross component boundaries (STYLE R6 tier 2). Protocol outcomes
//            (SMTP replies, DKIM results) are plain values, not Results; bugs
//            are HIKYAKU_CHECK failures, not Results.
// Trust:     none; a vocabulary type.
// Errors:    value() on an error and error() on a value are bugs: they abort.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

// HIKYAKU_CHECK: a broken invariant in release builds too: report and abort
// (Postfix msg_panic, Envoy RELEASE_ASSERT).
#define HIKYAKU_CHECK(cond)                                                          \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      (void)std::fprintf(stderr, "hikyaku: invariant failed: %s at %s:%d\n", #cond,   \
                         __FILE__, __LINE__); /* aborting: nothing to do if it fails */ \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

namespace hikyaku::base {

// An expected failure: what went wrong, in words fit for a log line, and
// the errno of the system call that failed (0 when none did), so that a
// caller can tell a full disk (ENOSPC, EDQUOT) from other failures without
// reading the words (the SMTP session answers 452 4.3.1 for it).
struct Error {
  std::string message;
  int error_number = 0;

  bool out_of_space() const { return error_number == ENOSPC || error_number == EDQUOT; }
};

inline Error make_error(std::string message) { return Error{std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { HIKYAKU_CHECK(ok()); return std::get<0>(v_); }
  const T& value() const& { HIKYAKU_CHECK(ok()); return std::get<0>(v_); }
  T&& value() && { HIKYAKU_CHECK(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { HIKYAKU_CHECK(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { HIKYAKU_CHECK(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace hikyaku::base
