// Purpose:   What `hikyaku reload` (and SIGHUP) may change in a running
//            server (issue 14 item 6). A reload re-reads the configuration
//            file and the per-user forwards and applies the rules mail is
//            handled by: [[domain]] names and inbound options, [[mailbox]],
//            [[address]], [[forward]], [[route]] and `postmaster`. The rest
//            is the server's machinery, set up once at start (bound
//            listeners, privileges, files only root may read, pools): it
//            keeps its running values, which reloadable() copies into the
//            new configuration, and a restart applies changes to it.
// Trust:     both configurations are trusted (loaded and validated).
// Errors:    a change that a reload cannot apply safely and that is not
//            simply kept as running — a DKIM key added, removed or moved
//            (keys are read at start, possibly as root; forwarding some
//            domains unsigned would make Gmail refuse more) — is an Error
//            naming the domain, and the running configuration stays.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"

namespace hikyaku::config {

// The sections and keys that keep their values from start, for the log
// and the docs ("[listen]", "hostname", ...).
const std::vector<std::string>& restart_only_settings();

// `next` with the restart-only settings of `running`; an Error when the
// DKIM signing keys differ. (The hidden [[forward]]s `next` drops stay
// known through known_forwards.hpp, at a reload as across a restart.)
base::Result<Config> reloadable(const Config& running, Config next);

}  // namespace hikyaku::config
