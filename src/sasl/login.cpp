#include "sasl/login.hpp"

#include "sasl/plain.hpp"

namespace hikyaku::sasl {

namespace {
constexpr std::string_view kUsernameChallenge = "VXNlcm5hbWU6";  // "Username:"
constexpr std::string_view kPasswordChallenge = "UGFzc3dvcmQ6";  // "Password:"
}  // namespace

LoginExchange::Step LoginExchange::start(std::optional<std::string_view> initial_response) {
  phase_ = Phase::user;
  user_.clear();
  password_.clear();
  if (initial_response) return respond(*initial_response);
  return Step{Step::Kind::challenge, std::string(kUsernameChallenge)};
}

LoginExchange::Step LoginExchange::respond(std::string_view line) {
  if (phase_ == Phase::finished) return Step{Step::Kind::error, {}};
  if (is_cancel(line)) {
    phase_ = Phase::finished;
    return Step{Step::Kind::cancelled, {}};
  }
  auto decoded = decode_response(line);
  if (!decoded || decoded->find('\0') != std::string::npos) {
    phase_ = Phase::finished;
    return Step{Step::Kind::error, {}};
  }
  if (phase_ == Phase::user) {
    if (decoded->empty()) {
      phase_ = Phase::finished;
      return Step{Step::Kind::error, {}};
    }
    user_ = std::move(*decoded);
    phase_ = Phase::password;
    return Step{Step::Kind::challenge, std::string(kPasswordChallenge)};
  }
  password_ = std::move(*decoded);
  phase_ = Phase::finished;
  return Step{Step::Kind::done, {}};
}

}  // namespace hikyaku::sasl
