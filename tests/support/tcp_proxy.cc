#include "tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <iostream>
#include <limits>
#include <utility>

namespace pgcourier::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Per connection and direction: what the proxy holds before it stops reading
// the sender, so that a stall or a rate limit pushes back on it.
constexpr size_t kMaxPendingBytes = 256 * 1024;
constexpr size_t kReadBytes = 64 * 1024;
constexpr int kSocketBufferBytes = 64 * 1024;
// The loop wakes at least this often (it is woken at once by any control).
constexpr auto kIdlePoll = std::chrono::milliseconds(200);
constexpr auto kRebindRetry = std::chrono::milliseconds(50);
constexpr size_t kNoSlot = std::numeric_limits<size_t>::max();

Status Errno(const std::string& what) {
  return Status(StatusCode::kIoError, what + ": " + std::strerror(errno));
}

// Closes with an RST instead of a FIN: the peer's next read or write fails
// with "connection reset".
void Reset(int fd) {
  if (fd < 0) return;
  linger no_linger{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof(no_linger));
  ::close(fd);
}

// Small kernel buffers on the proxy's sockets, so that a stalled proxy
// holds little and the sender notices soon (a socket's buffers would
// otherwise grow to megabytes on loopback).
void SmallBuffers(int fd) {
  int bytes = kSocketBufferBytes;
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

void NoDelay(int fd) {
  // Both ends (libpq, the server) send small protocol messages without
  // Nagle's delay; the proxy must not add it back.
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// A listening socket on 127.0.0.1:port (0: a free port).
Result<int> ListenOn(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  SmallBuffers(fd);  // accepted sockets inherit them
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 64) != 0) {
    Status failed = Errno("binding 127.0.0.1:" + std::to_string(port));
    ::close(fd);
    return failed;
  }
  return fd;
}

}  // namespace

struct TcpProxy::Link {
  struct Chunk {
    std::string data;
    size_t offset = 0;
    Clock::time_point release;  // not forwarded before (SetDelay)
  };
  struct Direction {
    std::deque<Chunk> chunks;
    size_t pending = 0;                // bytes held
    bool eof = false;                  // the sender closed its side
    bool shut = false;                 // the EOF was passed on (shutdown of the receiver)
    Clock::time_point next_allowed{};  // SetRateLimit
    std::atomic<int64_t>* forwarded = nullptr;

    // Whether the first chunk may go now; else when it may, in *when.
    bool Ready(Clock::time_point now, Clock::time_point* when) const {
      if (chunks.empty()) return false;
      *when = std::max(chunks.front().release, next_allowed);
      return *when <= now;
    }
    // Reads what the sender `fd` has. False when the connection is broken.
    bool ReadFrom(int fd, std::chrono::milliseconds delay, Clock::time_point now);
    // Writes from the first chunk to the receiver `fd`. False when the
    // connection is broken.
    bool WriteTo(int fd, int64_t rate, Clock::time_point now);
  };

  int client = -1;
  int server = -1;
  bool connecting = true;  // the upstream connect() is under way
  Direction up;            // client -> server
  Direction down;          // server -> client
};

bool TcpProxy::Link::Direction::ReadFrom(int fd, std::chrono::milliseconds delay,
                                         Clock::time_point now) {
  std::string buffer(kReadBytes, '\0');
  ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
  if (n > 0) {
    buffer.resize(static_cast<size_t>(n));
    pending += buffer.size();
    chunks.push_back({std::move(buffer), 0, now + delay});
    return true;
  }
  if (n == 0) {
    eof = true;
    return true;
  }
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

bool TcpProxy::Link::Direction::WriteTo(int fd, int64_t rate, Clock::time_point now) {
  Chunk& chunk = chunks.front();
  size_t length = chunk.data.size() - chunk.offset;
  // Small writes under a rate limit, so that the rate is smooth at the
  // scale of 50 ms.
  if (rate > 0) length = std::min(length, std::max<size_t>(1, static_cast<size_t>(rate / 20)));
  ssize_t n = ::send(fd, chunk.data.data() + chunk.offset, length, MSG_NOSIGNAL);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  const auto sent = static_cast<size_t>(n);
  chunk.offset += sent;
  pending -= sent;
  *forwarded += n;
  if (chunk.offset == chunk.data.size()) chunks.pop_front();
  if (rate > 0) next_allowed = now + std::chrono::nanoseconds(n * 1'000'000'000 / rate);
  return true;
}

Result<std::unique_ptr<TcpProxy>> TcpProxy::Start(int upstream_port,
                                                  const std::string& upstream_host) {
  in_addr upstream{};
  if (::inet_pton(AF_INET, upstream_host.c_str(), &upstream) != 1) {
    return Status(StatusCode::kInvalidArgument,
                  "TcpProxy forwards to IPv4 literals only, not " + upstream_host);
  }
  Result<int> listening = ListenOn(0);
  if (!listening.ok()) return listening.status();
  sockaddr_in bound{};
  socklen_t length = sizeof(bound);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (::getsockname(*listening, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    Status failed = Errno("getsockname");
    ::close(*listening);
    return failed;
  }
  std::unique_ptr<TcpProxy> proxy(
      new TcpProxy(ntohs(bound.sin_port), upstream.s_addr, upstream_port));
  proxy->listen_fd_ = *listening;
  proxy->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (proxy->wake_fd_ < 0) return Errno("eventfd");
  proxy->thread_ = std::thread([p = proxy.get()] { p->Loop(); });
  return proxy;
}

TcpProxy::TcpProxy(int port, uint32_t upstream_addr, int upstream_port)
    : port_(port), upstream_addr_(upstream_addr), upstream_port_(upstream_port) {}

TcpProxy::~TcpProxy() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    Wake();
    thread_.join();
  }
  for (auto& link : links_) CloseLink(*link, false);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void TcpProxy::Wake() const {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void TcpProxy::Change(const std::function<void(Controls&)>& change) {
  std::unique_lock<std::mutex> lock(mu_);
  change(controls_);
  const int64_t mine = ++requested_;
  lock.unlock();
  Wake();
  lock.lock();
  seen_cv_.wait(lock, [&] { return seen_ >= mine || stop_; });
}

void TcpProxy::CutAll() {
  Change([](Controls& c) { ++c.cut_requests; });
}
void TcpProxy::Stall(bool stalled) {
  Change([stalled](Controls& c) { c.stalled = stalled; });
}
void TcpProxy::SetDelay(std::chrono::milliseconds delay) {
  Change([delay](Controls& c) { c.delay = delay; });
}
void TcpProxy::SetRateLimit(int64_t bytes_per_second) {
  Change([bytes_per_second](Controls& c) { c.rate = std::max<int64_t>(bytes_per_second, 0); });
}
void TcpProxy::RefuseFor(std::chrono::milliseconds duration) {
  Change([duration](Controls& c) { c.refuse_until = Clock::now() + duration; });
}
void TcpProxy::Accept(bool accept) {
  Change([accept](Controls& c) { c.accepting = accept; });
}

TcpProxy::Counters TcpProxy::counters() const {
  Counters c;
  c.accepted = accepted_.load();
  c.dropped = dropped_.load();
  c.cut = cut_.load();
  c.open = open_.load();
  c.bytes_to_server = bytes_to_server_.load();
  c.bytes_to_client = bytes_to_client_.load();
  return c;
}

bool TcpProxy::WaitUntil(const std::function<bool(const Counters&)>& done,
                         std::chrono::milliseconds timeout) const {
  const auto until = Clock::now() + timeout;
  for (;;) {
    if (done(counters())) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void TcpProxy::CloseLink(Link& link, bool reset) {
  if (link.client < 0 && link.server < 0) return;
  if (reset) {
    Reset(link.client);
    Reset(link.server);
  } else {
    if (link.client >= 0) ::close(link.client);
    if (link.server >= 0) ::close(link.server);
  }
  link.client = -1;
  link.server = -1;
  --open_;
}

void TcpProxy::AcceptOne(const Controls& controls) {
  int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (client < 0) return;
  if (!controls.accepting) {
    Reset(client);
    ++dropped_;
    return;
  }
  int server = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (server >= 0) SmallBuffers(server);
  sockaddr_in upstream{};
  upstream.sin_family = AF_INET;
  upstream.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  upstream.sin_addr.s_addr = upstream_addr_;
  int connected = server < 0
                      ? -1
                      // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
                      : ::connect(server, reinterpret_cast<sockaddr*>(&upstream), sizeof(upstream));
  if (connected != 0 && errno != EINPROGRESS) {
    // The server is not there: the client learns it the way it would have.
    Reset(client);
    if (server >= 0) ::close(server);
    ++dropped_;
    return;
  }
  NoDelay(client);
  NoDelay(server);
  auto link = std::make_unique<Link>();
  link->client = client;
  link->server = server;
  link->connecting = connected != 0;
  link->up.forwarded = &bytes_to_server_;
  link->down.forwarded = &bytes_to_client_;
  links_.push_back(std::move(link));
  ++accepted_;
  ++open_;
}

void TcpProxy::Loop() {
  struct Slots {
    size_t client = kNoSlot;
    size_t server = kNoSlot;
  };
  std::vector<pollfd> fds;
  std::vector<Slots> slots;
  bool rebind_reported = false;
  for (;;) {
    Controls controls;
    int64_t requested = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      controls = controls_;
      requested = requested_;
    }
    auto now = Clock::now();
    if (controls.cut_requests > cuts_done_) {
      cuts_done_ = controls.cut_requests;
      for (auto& link : links_) {
        CloseLink(*link, true);
        ++cut_;
      }
      links_.clear();
    }
    Clock::time_point wake_at = now + kIdlePoll;
    const bool refusing = now < controls.refuse_until;
    if (refusing) {
      if (listen_fd_ >= 0) ::close(listen_fd_);
      listen_fd_ = -1;
      wake_at = std::min(wake_at, controls.refuse_until);
    } else if (listen_fd_ < 0) {
      // Listening again on the same port; something else may hold it for a
      // moment (a connection in TIME_WAIT does not, thanks to SO_REUSEADDR).
      Result<int> listening = ListenOn(port_);
      if (listening.ok()) {
        listen_fd_ = *listening;
      } else {
        if (!rebind_reported) std::cerr << "TcpProxy: " << listening.status().ToString() << "\n";
        rebind_reported = true;
        wake_at = std::min(wake_at, now + kRebindRetry);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_ = requested;
    }
    seen_cv_.notify_all();

    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const size_t listen_slot = listen_fd_ >= 0 ? fds.size() : kNoSlot;
    if (listen_fd_ >= 0) fds.push_back({listen_fd_, POLLIN, 0});
    slots.assign(links_.size(), Slots());
    for (size_t i = 0; i < links_.size() && !controls.stalled; ++i) {
      Link& link = *links_[i];
      short client_events = 0;
      short server_events = 0;
      if (link.connecting) {
        server_events = POLLOUT;
      } else {
        if (!link.up.eof && link.up.pending < kMaxPendingBytes) client_events |= POLLIN;
        if (!link.down.eof && link.down.pending < kMaxPendingBytes) server_events |= POLLIN;
        Clock::time_point when;
        if (link.up.Ready(now, &when)) {
          server_events |= POLLOUT;
        } else if (!link.up.chunks.empty()) {
          wake_at = std::min(wake_at, when);
        }
        if (link.down.Ready(now, &when)) {
          client_events |= POLLOUT;
        } else if (!link.down.chunks.empty()) {
          wake_at = std::min(wake_at, when);
        }
      }
      if (client_events != 0) {
        slots[i].client = fds.size();
        fds.push_back({link.client, client_events, 0});
      }
      if (server_events != 0) {
        slots[i].server = fds.size();
        fds.push_back({link.server, server_events, 0});
      }
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now);
    // Rounded up: waking a little early would only spin.
    int timeout_ms = wake_at <= now ? 0 : static_cast<int>(wait.count()) + 1;
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      std::cerr << "TcpProxy: poll: " << std::strerror(errno) << "\n";
      std::this_thread::sleep_for(kRebindRetry);
      continue;
    }
    if ((fds[0].revents & POLLIN) != 0) {
      uint64_t ignored = 0;
      (void)!::read(wake_fd_, &ignored, sizeof(ignored));
    }
    now = Clock::now();
    for (size_t i = 0; i < slots.size(); ++i) {
      Link& link = *links_[i];
      bool broken = false;
      auto events = [&](size_t slot, short wanted) {
        if (slot == kNoSlot || (fds[slot].events & wanted) == 0) return false;
        // An error or hang-up shows when reading or writing.
        return (fds[slot].revents & (wanted | POLLERR | POLLHUP)) != 0;
      };
      if (link.connecting) {
        if (events(slots[i].server, POLLOUT)) {
          int error = 0;
          socklen_t length = sizeof(error);
          (void)::getsockopt(link.server, SOL_SOCKET, SO_ERROR, &error, &length);
          if (error != 0) {
            broken = true;
          } else {
            link.connecting = false;
          }
        }
      } else {
        if (events(slots[i].client, POLLIN)) {
          broken = broken || !link.up.ReadFrom(link.client, controls.delay, now);
        }
        if (events(slots[i].server, POLLIN)) {
          broken = broken || !link.down.ReadFrom(link.server, controls.delay, now);
        }
        if (events(slots[i].server, POLLOUT)) {
          broken = broken || !link.up.WriteTo(link.server, controls.rate, now);
        }
        if (events(slots[i].client, POLLOUT)) {
          broken = broken || !link.down.WriteTo(link.client, controls.rate, now);
        }
        // A side that closed is passed on once what it sent before is.
        if (link.up.eof && link.up.chunks.empty() && !link.up.shut) {
          (void)::shutdown(link.server, SHUT_WR);
          link.up.shut = true;
        }
        if (link.down.eof && link.down.chunks.empty() && !link.down.shut) {
          (void)::shutdown(link.client, SHUT_WR);
          link.down.shut = true;
        }
      }
      if (broken || (link.up.shut && link.down.shut)) CloseLink(link, broken);
    }
    links_.erase(std::remove_if(links_.begin(), links_.end(),
                                [](const std::unique_ptr<Link>& link) { return link->client < 0; }),
                 links_.end());
    if (listen_slot != kNoSlot && (fds[listen_slot].revents & POLLIN) != 0) AcceptOne(controls);
  }
}

}  // namespace pgcourier::testing
