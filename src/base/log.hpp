// Purpose:   One named spdlog logger per component (STYLE R14): "smtpd",
//            "pop3d", "queue", "delivery", ... Every line about a connection
//            carries its session id, every line about a message its queue id.
//            Lines are text, or JSON objects (log_format = "json").
// Trust:     callers must never pass secrets (AUTH data, keys, passwords).
// Concurrency: spdlog loggers are thread-safe (_mt sinks).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace hikyaku::base {

// The logger for a component; created on first use, sharing the default sink.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// Configure the process-wide sink once at start: stderr, level from the
// config or command line ("trace", "debug", "info", "warn", "error"),
// format "text" (one line: time, level, component, message) or "json" (one
// JSON object per line for log shippers: {"time","level","logger","msg"}).
void init_logging(const std::string& level, const std::string& format = "text");

// A log line's JSON object (no newline); `msg` is escaped (RFC 8259 §7),
// bytes that are not UTF-8 become \u00XX, so the line is always valid JSON.
std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view logger, std::string_view msg);

}  // namespace hikyaku::base
