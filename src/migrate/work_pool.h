// The pool of jobs that every database of a migration shares: `workers`
// threads taking tasks from one queue, most urgent first, then the heaviest,
// so that a cluster with one big and many small databases keeps every job
// busy until the end.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace pgcourier {

class WorkPool {
 public:
  // Lower runs first; within one, larger weight first, then submission order.
  enum Priority : int {
    kUrgent = 0,   // unblocks other work (index builds, the rest of a schema)
    kCopy = 1,     // table data, largest first
    kCompare = 2,  // checks that nothing waits for
  };

  explicit WorkPool(int workers);
  // Runs what is queued to the end, then joins the workers.
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `task`; it runs on one of the workers. Tasks must not throw.
  void Submit(Priority priority, int64_t weight, std::function<void()> task);

  int workers() const { return static_cast<int>(threads_.size()); }

 private:
  struct Entry {
    int priority;
    int64_t weight;
    uint64_t sequence;
    std::function<void()> task;
    bool operator<(const Entry& other) const;  // "runs after"
  };
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Entry> queue_;
  uint64_t next_sequence_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Counts a group's tasks still to finish and lets one thread wait for all
// of them.
class TaskGroup {
 public:
  void Add(int n = 1);
  void Done();
  void Wait();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int pending_ = 0;
};

}  // namespace pgcourier
