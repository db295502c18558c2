// Purpose:   One named spdlog logger per component (STYLE R14): "smtpd",
//            "pop3d", "queue", "delivery", ... Every line about a connection
//            carries its session id, every line about a message its queue id.
// Trust:     callers must never pass secrets (AUTH data, keys, passwords).
// Concurrency: spdlog loggers are thread-safe (_mt sinks).
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace hikyaku::base {

// The logger for a component; created on first use, sharing the default sink.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// Configure the process-wide sink once at start: stderr, level from the
// config or command line ("trace", "debug", "info", "warn", "error").
void init_logging(const std::string& level);

}  // namespace hikyaku::base
