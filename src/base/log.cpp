#include "base/log.hpp"

#include <ctime>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "base/strings.hpp"

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

namespace {

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v";

// One JSON object per line (log_format = "json").
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        json_log_line(msg.time, std::string_view(level.data(), level.size()),
                      std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                      std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

void use_format(spdlog::logger& l, const std::string& format) {
  if (format == "json") {
    l.set_formatter(std::make_unique<JsonFormatter>());
  } else {
    l.set_pattern(kTextPattern);
  }
}

}  // namespace

std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view logger, std::string_view msg) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char stamp[32];
  // 19 characters for any year of four digits; 0 (an empty stamp) otherwise.
  if (std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm) == 0) stamp[0] = '\0';
  std::string out = "{\"time\":\"" + std::string(stamp) + "." + fmt::format("{:03}", ms % 1000) + "Z\",\"level\":\"";
  const bool utf8 = valid_utf8(msg);
  auto escape = [&](std::string_view text) {
    for (char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (u < 0x20 || u == 0x7f || (u >= 0x80 && !utf8)) {
        out += fmt::format("\\u{:04x}", u);  // RFC 8259 §7; a stray byte read as Latin-1
      } else {
        out += c;
      }
    }
  };
  escape(level);
  out += "\",\"logger\":\"";
  escape(logger);
  out += "\",\"msg\":\"";
  escape(msg);
  out += "\"}";
  return out;
}

void init_logging(const std::string& level, const std::string& format) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto root = std::make_shared<spdlog::logger>("hikyaku", sink);
  root->set_level(spdlog::level::from_str(level));
  use_format(*root, format);
  spdlog::set_default_logger(root);
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks() = root->sinks();
    l->set_level(root->level());
    use_format(*l, format);
  });
  spdlog::set_level(root->level());
}

}  // namespace hikyaku::base
