// A TCP proxy between pgcourier and a test server, for network faults.
//
// A TcpProxy listens on 127.0.0.1 on a free port and forwards every
// connection it accepts to an upstream address (a PgCluster's port), bytes
// passed through unchanged, on a thread of its own (one poll() loop for all
// connections). Point a connection string at host() / port() instead of the
// server's and break the network from the test thread:
//
//   auto proxy = TcpProxy::Start(cluster->port());
//   ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
//   ... run pgcourier with host=127.0.0.1 port=(*proxy)->port() ...
//   (*proxy)->WaitUntil([](const TcpProxy::Counters& c) { return c.bytes() > 1 << 20; },
//                       std::chrono::seconds(30));
//   (*proxy)->CutAll();  // every forwarded connection reset
//
// Contract of the controls (callable from any thread):
//   - A control has taken effect when it returns: after CutAll() every
//     connection forwarded until then is closed; after Stall(true) no byte
//     is forwarded any more (bytes already handed to the kernel may still
//     arrive). Nothing else waits on the loop.
//   - Faults hit what goes through the proxy only; the server itself never
//     notices anything but closed or silent connections.
//   - Counters only grow (open is the number of connections right now).
//   - The destructor stops the thread and closes every socket (client and
//     upstream sides are simply closed).
//
// Not a general-purpose proxy: IPv4 literal addresses only, and the buffer of
// each direction of a connection is bounded (kMaxPendingBytes in the .cc), so
// a stalled or slow proxy pushes back on the sender like a slow network does.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "util/status.h"

namespace pgcourier::testing {

class TcpProxy {
 public:
  struct Counters {
    int64_t accepted = 0;         // connections accepted and forwarded
    int64_t dropped = 0;          // connections accepted and reset at once (Accept(false))
    int64_t cut = 0;              // connections reset by CutAll()
    int64_t open = 0;             // connections forwarded right now
    int64_t bytes_to_server = 0;  // client -> upstream, written to the upstream socket
    int64_t bytes_to_client = 0;  // upstream -> client, written to the client socket
    int64_t bytes() const { return bytes_to_server + bytes_to_client; }
  };

  // Listens on 127.0.0.1 on a free port and forwards to
  // upstream_host:upstream_port (an IPv4 literal). Errors when the socket
  // cannot be made or bound.
  static Result<std::unique_ptr<TcpProxy>> Start(int upstream_port,
                                                 const std::string& upstream_host = "127.0.0.1");

  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::string host() const { return "127.0.0.1"; }
  int port() const { return port_; }

  // Resets every forwarded connection now (SO_LINGER 0: both peers get an
  // RST, as when a NAT or a load balancer drops a flow). New connections are
  // forwarded as usual.
  void CutAll();
  // While stalled, nothing is forwarded in either direction and nothing is
  // closed: the connections look alive and silent (a black hole; TCP
  // keepalives are still answered by the kernel). New connections are
  // accepted and stall too. Stall(false) forwards what was held, in order.
  void Stall(bool stalled);
  // Holds every chunk read for `delay` before forwarding it (latency).
  void SetDelay(std::chrono::milliseconds delay);
  // Forwards at most `bytes_per_second` per connection and direction
  // (0: unlimited, the default), so that a small table takes a predictable
  // while to copy.
  void SetRateLimit(int64_t bytes_per_second);
  // Closes the listening socket for `duration`, so that new connections are
  // refused (ECONNREFUSED), as by a server that is asleep or restarting; it
  // listens on the same port again afterwards. Open connections go on.
  void RefuseFor(std::chrono::milliseconds duration);
  // accept = false: new connections are accepted and reset at once (a
  // listener in front of a server that is not there); true: forwarded.
  void Accept(bool accept);

  Counters counters() const;
  int64_t bytes_forwarded() const { return counters().bytes(); }
  int64_t connections_accepted() const { return counters().accepted; }

  // Polls counters() every 10 ms until `done` holds (true) or `timeout`
  // passes (false).
  bool WaitUntil(const std::function<bool(const Counters&)>& done,
                 std::chrono::milliseconds timeout) const;

 private:
  struct Link;
  struct Controls {
    bool stalled = false;
    bool accepting = true;
    std::chrono::milliseconds delay{0};
    int64_t rate = 0;
    std::chrono::steady_clock::time_point refuse_until{};
    int64_t cut_requests = 0;
  };

  TcpProxy(int port, uint32_t upstream_addr, int upstream_port);
  void Loop();
  // Applies `change` to the controls and returns once the loop has seen it.
  void Change(const std::function<void(Controls&)>& change);
  void Wake() const;
  void AcceptOne(const Controls& controls);
  void CloseLink(Link& link, bool reset);

  const int port_;
  const uint32_t upstream_addr_;  // network byte order
  const int upstream_port_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<std::unique_ptr<Link>> links_;  // the loop thread's only

  mutable std::mutex mu_;
  std::condition_variable seen_cv_;
  Controls controls_;      // guarded by mu_
  int64_t requested_ = 0;  // guarded by mu_: control changes made
  int64_t seen_ = 0;       // guarded by mu_: control changes the loop applied
  bool stop_ = false;      // guarded by mu_
  int64_t cuts_done_ = 0;  // the loop thread's only

  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> cut_{0};
  std::atomic<int64_t> open_{0};
  std::atomic<int64_t> bytes_to_server_{0};
  std::atomic<int64_t> bytes_to_client_{0};

  std::thread thread_;
};

}  // namespace pgcourier::testing
