#include "serve/status_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <charconv>
#include <mutex>
#include <thread>

#include "migrate/run_status.h"
#include "pg/conninfo.h"
#include "report/status_report.h"
#include "serve/history.h"
#include "serve/metrics.h"
#include "serve/status_page.h"

namespace pgcourier {
namespace {

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// What the requests are answered from: the last reading, rendered once.
class Readings {
 public:
  Readings(std::string dir, std::chrono::milliseconds poll, size_t history_samples)
      : dir_(std::move(dir)), poll_(poll), history_(history_samples) {}

  // A reading of the directory: rendered and kept when it succeeded, else
  // its error kept beside the last good one.
  void Take(const Result<StatusView>& view) {
    const double now = NowUnix();
    std::lock_guard lock(mu_);
    read_at_ = now;
    if (!view.ok()) {
      read_error_ = view.status().ToString();
      metrics_ = PrometheusText(last_view_, now, false);
      return;
    }
    read_error_.clear();
    last_view_ = *view;
    status_json_ = StatusJson(*view, false).dump(2) + "\n";
    status_tables_json_ = StatusJson(*view, true).dump(2) + "\n";
    metrics_ = PrometheusText(*view, now, true);
    history_.Add(*view, now);
  }

  std::string StatusJsonText(bool tables) const {
    std::lock_guard lock(mu_);
    return tables ? status_tables_json_ : status_json_;
  }
  std::string Metrics() const {
    std::lock_guard lock(mu_);
    return metrics_;
  }
  std::string HistoryJson() const {
    std::lock_guard lock(mu_);
    nlohmann::json out = {
        {"dir", dir_},
        {"poll_seconds", std::chrono::duration<double>(poll_).count()},
        {"read_at", read_at_},
        {"read_error", read_error_.empty() ? nlohmann::json(nullptr) : nlohmann::json(read_error_)},
        {"samples", history_.Json()}};
    return out.dump() + "\n";
  }

 private:
  const std::string dir_;
  const std::chrono::milliseconds poll_;
  mutable std::mutex mu_;
  StatusView last_view_;
  std::string status_json_;
  std::string status_tables_json_;
  std::string metrics_;
  std::string read_error_;
  double read_at_ = 0;
  StatusHistory history_;
};

Result<StatusView> ReadOnce(const ServeOptions& options) {
  Result<StatusView> view = ReadStatus(options.dir, true);
  if (view.ok()) ReadReplication(*view, options.connect_timeout, options.rate_sample);
  return view;
}

// Compares in time independent of where they differ.
bool SameToken(std::string_view given, std::string_view expected) {
  unsigned char differ = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    differ |= static_cast<unsigned char>(given[i] ^ expected[i % expected.size()]);
  }
  return differ == 0;
}

bool Authorized(const httplib::Request& req, const std::string& token) {
  if (token.empty()) return true;
  const std::string header = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.starts_with(kBearer) && SameToken(header.substr(kBearer.size()), token)) return true;
  return req.has_param("token") && SameToken(req.get_param_value("token"), token);
}

void Routes(httplib::Server& server, const Readings& readings, const std::string& token) {
  server.set_pre_routing_handler([&token](const httplib::Request& req, httplib::Response& res) {
    // The page, its data and the token never leave this origin or a cache.
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'");
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("read-only: only GET and HEAD\n", "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!Authorized(req, token)) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(
          "a token is required: send `Authorization: Bearer <token>` or add ?token=<token>\n",
          "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(StatusPageHtml()), "text/html; charset=utf-8");
  });
  server.Get("/api/status", [&readings](const httplib::Request& req, httplib::Response& res) {
    const bool tables = req.has_param("tables") && req.get_param_value("tables") != "0";
    res.set_content(readings.StatusJsonText(tables), "application/json");
  });
  server.Get("/api/history", [&readings](const httplib::Request&, httplib::Response& res) {
    res.set_content(readings.HistoryJson(), "application/json");
  });
  server.Get("/metrics", [&readings](const httplib::Request&, httplib::Response& res) {
    res.set_content(readings.Metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

Status CheckListen(const ListenAddress& address, const std::string& token) {
  if (!token.empty() || ClassifyHost(address.host) == HostKind::kLoopback) return Status::Ok();
  return Status(StatusCode::kInvalidArgument,
                fmt::format("refusing to serve the status on {} without a token: anyone who can "
                            "reach that address would see the migration",
                            address.Display()),
                "listen on a loopback address (the default, 127.0.0.1:8080), or give a token in "
                "PGCOURIER_SERVE_TOKEN or a file named by --token-file, which every request "
                "must then carry");
}

}  // namespace

std::string ListenAddress::Display() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const Status bad(StatusCode::kInvalidArgument,
                   fmt::format("--listen '{}' is not ADDRESS:PORT", text),
                   "give an address and a port, e.g. 127.0.0.1:8080, [::1]:8080 or "
                   "0.0.0.0:8080 (with a token)");
  ListenAddress out;
  std::string_view port;
  if (text.starts_with('[')) {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return bad;
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad;
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad;  // IPv6 needs brackets
    port = text.substr(colon + 1);
  }
  if (out.host.empty()) out.host = "127.0.0.1";
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || out.port < 0 ||
      out.port > 65535) {
    return bad;
  }
  return out;
}

Status ServeStatus(const ServeOptions& options, const CancelToken& cancel,
                   const std::function<void(const std::string& url)>& on_listening) {
  Result<ListenAddress> address = ParseListenAddress(options.listen);
  if (!address.ok()) return address.status();
  if (Status s = CheckListen(*address, options.token); !s.ok()) return s;
  Result<StatusView> first = ReadOnce(options);
  if (!first.ok()) return first.status();  // not a work directory: said as status says it

  Readings readings(options.dir, options.poll, options.history_samples);
  readings.Take(first);
  httplib::Server server;
  Routes(server, readings, options.token);
  if (address->port == 0) {
    address->port = server.bind_to_any_port(address->host);
  } else if (!server.bind_to_port(address->host, address->port)) {
    address->port = -1;
  }
  if (address->port < 0) {
    return Status(StatusCode::kIoError, fmt::format("cannot listen on {}", options.listen),
                  "the port is in use or the address is not this machine's: choose another "
                  "with --listen ADDRESS:PORT");
  }
  std::atomic<bool> listener_ended = false;
  std::thread listener([&server, &listener_ended] {
    server.listen_after_bind();
    listener_ended = true;
  });
  on_listening(fmt::format("http://{}/", address->Display()));
  while (SleepFor(options.poll, &cancel)) readings.Take(ReadOnce(options));
  // stop() does nothing before the accept loop runs: a Ctrl-C right after
  // the start would leave it running for good.
  while (!server.is_running() && !listener_ended) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server.stop();
  listener.join();
  return Status::Ok();
}

}  // namespace pgcourier
