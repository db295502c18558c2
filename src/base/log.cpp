#include "base/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace hikyaku::base {

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  // spdlog's registry is the one piece of process-wide state we accept: it is
  // internally locked and holds only loggers.
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (auto existing = spdlog::get(component)) return existing;
  auto default_logger = spdlog::default_logger();
  auto created = std::make_shared<spdlog::logger>(component, default_logger->sinks().begin(),
                                                  default_logger->sinks().end());
  created->set_level(default_logger->level());
  spdlog::register_logger(created);
  return created;
}

void init_logging(const std::string& level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto root = std::make_shared<spdlog::logger>("hikyaku", sink);
  root->set_level(spdlog::level::from_str(level));
  root->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
  spdlog::set_default_logger(root);
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks() = root->sinks();
    l->set_level(root->level());
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
  });
  spdlog::set_level(root->level());
}

}  // namespace hikyaku::base
