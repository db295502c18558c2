#include "admin/trace_command.hpp"

#include <ostream>

#include "history/trace.hpp"

namespace hikyaku::admin {

int trace(const config::Config& config, const std::string& query, std::ostream& out, std::ostream& err) {
  auto timelines = history::trace(config.data_dir / history::kFileName, query);
  if (!timelines) {
    err << "hikyaku: " << timelines.error().message << "\n";
    return 1;
  }
  if (timelines->empty()) {
    err << "hikyaku: no message in the history matches " << query << "\n";
    return 1;
  }
  out << history::format(*timelines);
  return 0;
}

}  // namespace hikyaku::admin
