// Deadlines and cancellation for every wait: waits are poll() calls on a
// socket plus the cancel token's file descriptor, bounded by a deadline, so a
// Ctrl-C or a timeout ends any wait at once without spinning.
#pragma once

#include <atomic>
#include <chrono>

namespace pgcourier {

// A point in time after which a wait gives up. Deadline::Never() never passes.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  static Deadline Never() { return Deadline(Clock::time_point::max()); }
  static Deadline After(std::chrono::milliseconds duration) {
    return Deadline(Clock::now() + duration);
  }

  bool never() const { return at_ == Clock::time_point::max(); }
  bool passed() const { return !never() && Clock::now() >= at_; }
  // Milliseconds left, clamped to [0, INT_MAX]; -1 for Never() (poll's "infinite").
  int PollTimeoutMs() const;
  // The earlier of this deadline and `other`.
  Deadline Min(Deadline other) const { return at_ <= other.at_ ? *this : other; }

 private:
  explicit Deadline(Clock::time_point at) : at_(at) {}
  Clock::time_point at_;
};

// A flag that can be raised from any thread or a signal handler, and waited on
// with poll() through fd(). Not copyable; share it by pointer.
class CancelToken {
 public:
  CancelToken();
  ~CancelToken();
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Async-signal-safe.
  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // Becomes readable once Cancel() was called. -1 if the eventfd could not be
  // made (then waits fall back to the deadline and a flag check per wake-up).
  int fd() const { return fd_; }

 private:
  std::atomic<bool> cancelled_{false};
  int fd_ = -1;
};

enum class WaitResult { kReady, kTimedOut, kCancelled, kError };

// Waits until `fd` is readable (and/or writable), the deadline passes or the
// token is cancelled. `cancel` may be null.
WaitResult WaitForSocket(int fd, bool for_read, bool for_write, Deadline deadline,
                         const CancelToken* cancel);

// Sleeps for `duration` unless cancelled first; returns false when cancelled.
bool SleepFor(std::chrono::milliseconds duration, const CancelToken* cancel);

}  // namespace pgcourier
