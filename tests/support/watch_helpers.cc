#include "watch_helpers.h"

#include <fcntl.h>
#include <unistd.h>

#include "pg/conninfo.h"
#include "pg/quote.h"

namespace pgcourier::testing {

std::string ReadBytes(const std::filesystem::path& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buffer[65536];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) {
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool PartlyCopied(std::unique_ptr<Connection>& shop, const std::string& conn_string,
                  std::string_view object) {
  if (!shop) {
    Result<std::unique_ptr<Connection>> c = Connection::Connect(*ConnInfo::Parse(conn_string), {});
    if (!c.ok()) return false;
    shop = std::move(*c);
  }
  Result<QueryResult> r = shop->Exec(
      "SELECT count(*), max(parts) FROM _pgcourier.steps WHERE object = " + QuoteLiteral(object) +
      " AND step LIKE 'copy %'");
  if (!r.ok()) {
    if (shop->IsBad()) shop.reset();
    return false;  // the marks are not there yet
  }
  return r->GetInt(0, 0) > 0 && r->GetInt(0, 0) < r->GetInt(0, 1);
}

}  // namespace pgcourier::testing
