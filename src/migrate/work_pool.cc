#include "migrate/work_pool.h"

#include <algorithm>
#include <tuple>

namespace pgcourier {

bool WorkPool::Entry::operator<(const Entry& other) const {
  // std::priority_queue pops the largest: the "largest" entry is the one with
  // the lowest priority number, then the largest weight, then the oldest.
  return std::make_tuple(-priority, weight, -static_cast<int64_t>(sequence)) <
         std::make_tuple(-other.priority, other.weight, -static_cast<int64_t>(other.sequence));
}

WorkPool::WorkPool(int workers) {
  const int n = std::max(1, workers);
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Work(); });
}

WorkPool::~WorkPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkPool::Submit(Priority priority, int64_t weight, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push({priority, weight, next_sequence_++, std::move(task)});
  }
  cv_.notify_one();
}

void WorkPool::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;                               // stopping, and nothing left
      task = std::move(const_cast<Entry&>(queue_.top()).task);  // NOLINT: moved out, then popped
      queue_.pop();
    }
    task();
  }
}

void TaskGroup::Add(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_ += n;
}

void TaskGroup::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--pending_ == 0) cv_.notify_all();
}

void TaskGroup::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return pending_ <= 0; });
}

}  // namespace pgcourier
