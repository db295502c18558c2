// Purpose:   `hikyaku trace ID|ADDRESS` (issue 16 item 1): print a message's
//            timeline from the delivery history in DATA_DIR (history/trace.hpp),
//            with a running server or without one.
// Trust:     run by the operator, as the service user; the history holds
//            hidden forward addresses only as "<hidden>".
// Errors:    no history, an unreadable one, or nothing that matches: a
//            message on `err`, exit status 1.
#pragma once

#include <iosfwd>
#include <string>

#include "config/config.hpp"

namespace hikyaku::admin {

int trace(const config::Config& config, const std::string& query, std::ostream& out, std::ostream& err);

}  // namespace hikyaku::admin
