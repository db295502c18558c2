// Purpose:   `hikyaku reload`: ask the running server to re-read its
//            configuration file and the per-user forwards (issue 14 item 6),
//            and print what it answered. The server is found by the
//            lock it holds on DATA_DIR/hikyaku.pid and asked with SIGHUP (what systemd's
//            ExecReload sends too); its answer is the line it writes to
//            DATA_DIR/state/reload after each reload ("reload N: loaded ..."
//            or "reload N: refused: FILE:LINE:COL: ..."). The caller has
//            already loaded the configuration: one with errors never
//            reaches the server.
// Trust:     run by the operator, as the service user (data_dir is its).
// Errors:    no running server, a signal that cannot be sent, no answer
//            within `wait`, or a refusal: a message on `err`, exit status 1.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <iosfwd>
#include <string_view>

#include "base/result.hpp"
#include "config/config.hpp"

namespace hikyaku::admin {

// The process that serves this data directory: the one holding the lock on
// DATA_DIR/hikyaku.pid (base/pid_lock.hpp), so a file a crash left behind,
// whose pid may now be anyone's, names no server. `queue flush` uses it too,
// to tell a stopped server from a silent one.
base::Result<pid_t> server_pid(const config::Config& config);

// In the server's answer when the TLS certificates did not load again (the
// old ones stay in use): `reload` then exits 1 even if the configuration
// was loaded.
inline constexpr std::string_view kTlsNotReloaded = "TLS certificates NOT reloaded, the old ones stay in use";

int reload(const config::Config& config, std::ostream& out, std::ostream& err,
           std::chrono::milliseconds wait = std::chrono::seconds(15));

}  // namespace hikyaku::admin
