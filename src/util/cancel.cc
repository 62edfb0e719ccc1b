#include "util/cancel.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>

namespace pgcourier {

int Deadline::PollTimeoutMs() const {
  if (never()) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at_ - Clock::now()).count();
  if (left <= 0) return 0;
  if (left > INT_MAX) return INT_MAX;
  return static_cast<int>(left);
}

CancelToken::CancelToken() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

CancelToken::~CancelToken() {
  if (fd_ >= 0) ::close(fd_);
}

void CancelToken::Cancel() {
  cancelled_.store(true, std::memory_order_release);
  if (fd_ >= 0) {
    uint64_t one = 1;
    ssize_t ignored = ::write(fd_, &one, sizeof(one));
    (void)ignored;
  }
}

WaitResult WaitForSocket(int fd, bool for_read, bool for_write, Deadline deadline,
                         const CancelToken* cancel) {
  for (;;) {
    if (cancel != nullptr && cancel->cancelled()) return WaitResult::kCancelled;
    if (deadline.passed()) return WaitResult::kTimedOut;
    struct pollfd fds[2];
    nfds_t count = 0;
    if (fd >= 0) {
      short events = 0;
      if (for_read) events |= POLLIN;
      if (for_write) events |= POLLOUT;
      fds[count++] = {fd, events, 0};
    }
    if (cancel != nullptr && cancel->fd() >= 0) fds[count++] = {cancel->fd(), POLLIN, 0};
    int timeout = deadline.PollTimeoutMs();
    // Without an eventfd a cancellation is noticed at the latest after 200 ms.
    if (cancel != nullptr && cancel->fd() < 0 && (timeout < 0 || timeout > 200)) timeout = 200;
    int n = ::poll(fds, count, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return WaitResult::kError;
    }
    if (cancel != nullptr && cancel->cancelled()) return WaitResult::kCancelled;
    if (n > 0 && fd >= 0 && fds[0].revents != 0) return WaitResult::kReady;
    if (fd < 0 && n == 0 && deadline.passed()) return WaitResult::kTimedOut;
  }
}

bool SleepFor(std::chrono::milliseconds duration, const CancelToken* cancel) {
  return WaitForSocket(-1, false, false, Deadline::After(duration), cancel) !=
         WaitResult::kCancelled;
}

}  // namespace pgcourier
