#include "serve/history.h"

namespace pgcourier {
namespace {

nlohmann::json KnownOrNull(int64_t value) {
  return value < 0 ? nlohmann::json(nullptr) : nlohmann::json(value);
}

}  // namespace

void StatusHistory::Add(const StatusView& view, double at_unix) {
  if (capacity_ == 0) return;
  nlohmann::json databases = nlohmann::json::object();
  for (const auto& db : view.databases) {
    nlohmann::json one = {{"bytes_done", db.bytes_done},
                          {"rows_done", db.rows_done},
                          {"lag_bytes", nullptr},
                          {"retained_wal_bytes", nullptr}};
    if (auto r = view.replication.find(db.name); r != view.replication.end()) {
      one["lag_bytes"] = KnownOrNull(r->second.lag.lag_bytes);
      one["retained_wal_bytes"] = KnownOrNull(r->second.lag.retained_bytes);
    }
    databases[db.name] = std::move(one);
  }
  samples_.push_back({{"at", at_unix}, {"databases", std::move(databases)}});
  while (samples_.size() > capacity_) samples_.pop_front();
}

nlohmann::json StatusHistory::Json() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : samples_) out.push_back(s);
  return out;
}

}  // namespace pgcourier
