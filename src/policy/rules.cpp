#include "policy/rules.hpp"

#include "policy/forwards.hpp"

namespace hikyaku::policy {

Rules::Rules(std::shared_ptr<const config::Config> config, std::vector<std::string> srs_secrets,
             const base::Clock* clock, uint64_t generation)
    : config_(std::move(config)),
      addresses_(*config_, std::move(srs_secrets), clock != nullptr ? *clock : system_clock_),
      delivery_(*config_),
      reports_(*config_, &addresses_),
      hidden_(hidden_addresses(*config_)),
      generation_(generation) {}

std::shared_ptr<const Rules> Rules::create(std::shared_ptr<const config::Config> config,
                                           std::vector<std::string> srs_secrets, const base::Clock* clock,
                                           uint64_t generation) {
  return std::make_shared<const Rules>(std::move(config), std::move(srs_secrets), clock, generation);
}

std::shared_ptr<const Rules> Rules::create(config::Config config) {
  return create(std::make_shared<const config::Config>(std::move(config)), {}, nullptr);
}

}  // namespace hikyaku::policy
