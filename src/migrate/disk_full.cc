#include "migrate/disk_full.h"

#include <fmt/format.h>

namespace pgcourier {

bool IsOutOfSpace(const Status& status) {
  if (status.ok()) return false;
  const std::string& state = status.sqlstate();
  // 53300 too many connections and 53400 configuration limit exceeded are
  // not about space.
  if (state.size() == 5 && state.compare(0, 2, "53") == 0 && state != "53300" && state != "53400") {
    return true;
  }
  const std::string& message = status.message();
  return message.find("No space left on device") != std::string::npos ||
         message.find("could not extend file") != std::string::npos ||
         message.find("disk full") != std::string::npos;
}

Status ExplainOutOfSpace(const Status& status, const std::string& work_dir) {
  if (!IsOutOfSpace(status)) return status;
  if (status.sqlstate() == "53200") {
    return status.WithHint(fmt::format(
        "the server ran out of memory: free memory there or lower --jobs, then run pgcourier "
        "migrate --resume --dir {}",
        work_dir));
  }
  return status.WithHint(fmt::format(
      "free space on the target (or, when the message names a local file, on the disk of {}), "
      "then run pgcourier migrate --resume --dir {}; the tables already copied are kept",
      work_dir, work_dir));
}

}  // namespace pgcourier
