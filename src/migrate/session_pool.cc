#include "migrate/session_pool.h"

#include <algorithm>

namespace pgcourier {

std::unique_ptr<WorkerSessions> SessionPool::Take(const std::string& database) {
  std::unique_ptr<WorkerSessions> closing;  // closed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto own = idle_.find(database);
  if (own != idle_.end() && !own->second.empty()) {
    std::unique_ptr<WorkerSessions> s = std::move(own->second.back());
    own->second.pop_back();
    return s;
  }
  if (open_ >= capacity_) {
    for (auto& [name, sets] : idle_) {
      if (sets.empty()) continue;
      closing = std::move(sets.back());
      sets.pop_back();
      --open_;
      break;
    }
  }
  ++open_;
  peak_ = std::max(peak_, open_);
  return std::make_unique<WorkerSessions>();
}

void SessionPool::GiveBack(const std::string& database, std::unique_ptr<WorkerSessions> sessions) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_[database].push_back(std::move(sessions));
}

void SessionPool::Discard(std::unique_ptr<WorkerSessions> sessions) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
  }
  sessions.reset();
}

void SessionPool::Close(const std::string& database) {
  std::vector<std::unique_ptr<WorkerSessions>> closing;
  std::lock_guard<std::mutex> lock(mu_);
  auto found = idle_.find(database);
  if (found == idle_.end()) return;
  closing = std::move(found->second);
  idle_.erase(found);
  open_ -= closing.size();
}

size_t SessionPool::open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

size_t SessionPool::peak() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

}  // namespace pgcourier
