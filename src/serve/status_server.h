// `pgcourier status --serve`: the status of a work directory served over
// HTTP, read-only. A poller reads the directory (and, for replicating
// databases, both servers) every `poll`; requests are answered from the last
// reading and never touch a server:
//   /            the status page (status_page.h), no external assets
//   /api/status  exactly `status --json` (pgcourier.status/1); with
//                ?tables=1 exactly `status --json --tables`
//   /api/history {dir, poll_seconds, read_at, read_error, samples}: the
//                samples the page charts (history.h), the work directory
//                and the last reading's error (null when it succeeded)
//   /metrics     the Prometheus text exposition (metrics.h)
// Only GET and HEAD are answered. A listen address that is not loopback is
// refused unless a token is given; with a token every request must carry it
// (`Authorization: Bearer <token>` or `?token=<token>`).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

struct ListenAddress {
  std::string host;  // an address or a name; IPv6 without brackets
  int port = 0;      // 0: any free port
  // "host:port", IPv6 in brackets.
  std::string Display() const;
};

// "ADDR:PORT", "[IPv6]:PORT" or ":PORT" (127.0.0.1). kInvalidArgument with
// the expected form otherwise.
Result<ListenAddress> ParseListenAddress(std::string_view text);

struct ServeOptions {
  std::string dir;
  std::string listen = "127.0.0.1:8080";
  // Required of every request when not empty; required to be not empty
  // for a non-loopback listen address.
  std::string token;
  std::chrono::milliseconds poll{2000};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds rate_sample{1000};
  size_t history_samples = 1800;  // an hour at the default poll
};

// Serves until `cancel` is raised. `on_listening` is called once with the
// page's URL when the socket is bound. Errors: kInvalidArgument for a bad
// listen address or a non-loopback one without a token, the error of
// ReadStatus for a work directory without a run's store, kIoError when
// the address cannot be bound.
Status ServeStatus(const ServeOptions& options, const CancelToken& cancel,
                   const std::function<void(const std::string& url)>& on_listening);

}  // namespace pgcourier
