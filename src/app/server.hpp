// Purpose:   `hikyaku serve`: build every component from the configuration,
//            bind the listeners, recover the spool, run until SIGINT/SIGTERM,
//            then shut down in two stages (stop accepting, finish work).
// Trust:     binds the configured ports; reads keys and certificates.
//            Started as root with a configured `user`, it does only that
//            (and gives data_dir to the user) as root, then drops to the
//            user for good before touching data_dir or serving anyone.
// Errors:    start-up problems are printed and give a non-zero exit status.
#pragma once

#include "config/config.hpp"

namespace hikyaku::app {

struct ServeOptions {
  bool demo = false;  // embedded demo: generate and print the demo password
};

int serve(config::Config config, const ServeOptions& options);

}  // namespace hikyaku::app
