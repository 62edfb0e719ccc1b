#include "pg/conninfo.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <netinet/in.h>

#include <cctype>
#include <cstdlib>
#include <memory>

#include "util/redact.h"

namespace pgcourier {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

bool IsLoopbackHost(const std::string& host) { return ClassifyHost(host) != HostKind::kRemote; }

// Percent-encodes what may not stand bare in a URI component.
std::string UriEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

HostKind ClassifyHost(std::string_view host) {
  if (host.empty() || host.front() == '/' || host.front() == '@') return HostKind::kUnixSocket;
  std::string name(host);
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  if (name == "localhost" || name == "localhost.") return HostKind::kLoopback;
  // Only a real address counts: a name such as 127.example.com can resolve
  // anywhere.
  in_addr v4{};
  if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127 ? HostKind::kLoopback : HostKind::kRemote;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, name.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return HostKind::kLoopback;
    if (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127) return HostKind::kLoopback;
  }
  return HostKind::kRemote;
}

bool IsSecretConnKeyword(const std::string& keyword) {
  return keyword == "password" || keyword == "sslpassword";
}

Result<ConnInfo> ConnInfo::Parse(const std::string& conninfo) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(conninfo.c_str(), &err), &PQconninfoFree);
  if (options == nullptr) {
    std::string message = err != nullptr ? err : "out of memory";
    if (err != nullptr) PQfreemem(err);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    // libpq quotes the whole string in some messages: mask its password.
    return Status(StatusCode::kInvalidArgument,
                  "invalid connection string: " + MaskPasswords(message),
                  "use a URI such as postgresql://user@host:5432/dbname?sslmode=require or "
                  "key=value pairs such as \"host=... port=5432 dbname=... user=...\"");
  }
  ConnInfo info;
  for (PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr) info.params_.emplace_back(o->keyword, o->val);
  }
  return info;
}

std::string ConnInfo::Get(const std::string& keyword) const {
  for (const auto& [k, v] : params_) {
    if (k == keyword) return v;
  }
  return {};
}

bool ConnInfo::Has(const std::string& keyword) const {
  for (const auto& [k, v] : params_) {
    if (k == keyword) return true;
  }
  return false;
}

ConnInfo ConnInfo::With(const std::string& keyword, const std::string& value) const {
  ConnInfo copy = *this;
  for (auto& [k, v] : copy.params_) {
    if (k == keyword) {
      v = value;
      return copy;
    }
  }
  copy.params_.emplace_back(keyword, value);
  return copy;
}

std::string ConnInfo::ExplicitDatabase() const {
  std::string db = Get("dbname");
  return db.empty() ? Env("PGDATABASE") : db;
}

std::string ConnInfo::EffectiveHost() const {
  std::string host = Get("host");
  if (host.empty()) host = Get("hostaddr");
  if (host.empty()) host = Env("PGHOST");
  if (host.empty()) host = Env("PGHOSTADDR");
  if (host.empty()) host = "/var/run/postgresql";  // libpq's default socket directory
  return host;
}

std::string ConnInfo::EffectivePort() const {
  std::string port = Get("port");
  if (port.empty()) port = Env("PGPORT");
  return port.empty() ? "5432" : port;
}

std::string ConnInfo::EffectiveUser() const {
  std::string user = Get("user");
  if (user.empty()) user = Env("PGUSER");
  if (user.empty()) user = Env("USER");
  return user;
}

bool ConnInfo::IsLocal() const {
  std::string hosts = EffectiveHost();
  size_t start = 0;
  while (start <= hosts.size()) {
    size_t end = hosts.find(',', start);
    if (end == std::string::npos) end = hosts.size();
    if (!IsLoopbackHost(hosts.substr(start, end - start))) return false;
    start = end + 1;
  }
  return true;
}

std::string QuoteConnValue(std::string_view value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('\'');
  return quoted;
}

std::string ConnInfo::ToKeyValueWithoutSecrets() const {
  std::string out;
  for (const auto& [k, v] : params_) {
    if (IsSecretConnKeyword(k)) continue;
    if (!out.empty()) out.push_back(' ');
    out += k + "=" + QuoteConnValue(v);
  }
  return out;
}

std::string ConnInfo::Redacted() const {
  // With a service, libpq takes what the string leaves out from the service
  // file: libpq's defaults written here would override it when the stored
  // form is used to connect again (resume, status, cutover).
  const bool service = Has("service") || !Env("PGSERVICE").empty();
  auto given = [this](const char* keyword, const char* env) {
    std::string value = Get(keyword);
    return value.empty() ? Env(env) : value;
  };
  std::string out = "postgresql://";
  std::string user = service ? given("user", "PGUSER") : EffectiveUser();
  if (!user.empty()) out += UriEscape(user) + "@";
  std::string host = EffectiveHost();
  std::string port = EffectivePort();
  if (service) {
    host = given("host", "PGHOST");
    if (host.empty()) host = given("hostaddr", "PGHOSTADDR");
    port = given("port", "PGPORT");
  }
  bool socket = !host.empty() && host.front() == '/';
  if (!socket && !host.empty()) {
    bool ipv6 = host.find(':') != std::string::npos && host.find(',') == std::string::npos;
    out += ipv6 ? "[" + host + "]" : host;
    if (!port.empty()) out += ":" + port;
  }
  out += "/" + UriEscape(ExplicitDatabase());
  std::string query;
  auto add = [&query](const std::string& k, const std::string& v) {
    query += (query.empty() ? "?" : "&") + k + "=" + UriEscape(v);
  };
  if (socket) add("host", host);
  if ((socket || host.empty()) && !port.empty()) add("port", port);
  for (const auto& [k, v] : params_) {
    if (k == "host" || k == "hostaddr" || k == "port" || k == "user" || k == "dbname" ||
        IsSecretConnKeyword(k)) {
      continue;
    }
    add(k, v);
  }
  return out + query;
}

}  // namespace pgcourier
