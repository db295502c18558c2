// Purpose:   The operator subcommands behind `hikyaku user ...`,
//            `hikyaku forward ...`, `hikyaku check-config` and
//            `hikyaku queue ...`: plain functions
//            that print to the given streams and return an exit status, so
//            tests can call them without a process.
// Trust:     run by the operator; passwords arrive on stdin, never argv, and
//            are never echoed or logged.
// Errors:    messages on `err`, non-zero return.
#pragma once

#include <iosfwd>
#include <string>

#include "config/config.hpp"
#include "config/user_forwards.hpp"

namespace hikyaku::admin {

// Print every configuration error as FILE:LINE:COL: message; 0 when valid.
int check_config(const config::LoadResult& loaded, std::ostream& out, std::ostream& err);

// Set NAME's password from the first line of `in` (trailing CR/LF removed).
int user_passwd(const config::Config& config, const std::string& name, std::istream& in, std::ostream& out,
                std::ostream& err);
int user_list(const config::Config& config, std::ostream& out, std::ostream& err);
int user_del(const config::Config& config, const std::string& name, std::ostream& out, std::ostream& err);

// Per-user forwarding (DATA_DIR/forwards, config/user_forwards.hpp).
// `config` is the configuration loaded WITHOUT the forwards file
// (LoadOptions::user_forwards = false), so a broken file can be repaired.
// forward_set replaces NAME's entry (`entry.name`) after the loader's checks,
// writes the file atomically (temporary, fsync, rename; 0600), then loads
// the whole configuration from config.source again; if that fails, the old
// file is put back and the errors printed (1).
int forward_set(const config::Config& config, const config::UserForward& entry, std::ostream& out,
                std::ostream& err);
// NAME's forward, or every entry when `name` is empty.
int forward_show(const config::Config& config, const std::string& name, std::ostream& out, std::ostream& err);
// Remove NAME's entry (0 also when there is none; 1 for an unknown mailbox).
int forward_clear(const config::Config& config, const std::string& name, std::ostream& out, std::ostream& err);

// Queue inspection: list, show ID, delete ID. Hidden forward addresses
// (DESIGN.md "never revealed") are printed as "<hidden>" — in targets,
// recipients (a notice goes to the hidden address) and remote replies —
// unless `reveal` (`queue show --reveal`) is given.
int queue_list(const config::Config& config, std::ostream& out, std::ostream& err);
int queue_show(const config::Config& config, const std::string& id, bool reveal, std::ostream& out,
               std::ostream& err);
int queue_delete(const config::Config& config, const std::string& id, std::ostream& out, std::ostream& err);
// `queue flush [ID] [--destination DOMAIN]`: make waiting deliveries due now
// (control_client.cpp): through the running server's control socket, or, when
// it is stopped, in the spool (attempted as soon as it starts). Exit 0 done,
// 1 refused, 2 a malformed ID or DOMAIN.
int queue_flush(const config::Config& config, const std::string& id, const std::string& destination,
                std::ostream& out, std::ostream& err);

}  // namespace hikyaku::admin
