#include "cli_support.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <regex>

namespace pgcourier::cli {

CancelToken& InterruptToken() {
  static CancelToken token;
  return token;
}

namespace {
std::atomic<int> g_interrupts{0};

void OnInterrupt(int signal) {
  if (g_interrupts.fetch_add(1) > 0) {
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  InterruptToken().Cancel();
}
}  // namespace

void InstallInterruptHandlers() {
  (void)InterruptToken();  // create before any signal can arrive
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

std::string MaskPasswords(std::string text) {
  // URI userinfo: scheme://user:password@host
  static const std::regex kUri(R"(((?:postgres|postgresql)://[^:/@\s]*:)([^@\s]*)(@))",
                               std::regex::icase);
  // key=value: password=secret or password='quoted secret'
  static const std::regex kKeyValue(R"(((?:^|\s)(?:password|sslpassword)\s*=\s*)('(?:[^'\\]|\\.)*'|\S+))");
  // URI query parameter: ?password=secret&...
  static const std::regex kQuery(R"(([?&](?:password|sslpassword)=)([^&\s]*))");
  auto mask = [](const std::regex& re, const std::string& in) {
    std::string out;
    auto begin = in.cbegin();
    std::smatch m;
    while (std::regex_search(begin, in.cend(), m, re)) {
      out.append(begin, m[0].first);
      out += m[1].str();
      out += std::string(m[2].length(), '*');
      if (m.size() > 3) out += m[3].str();
      begin = m[0].second;
    }
    out.append(begin, in.cend());
    return out;
  };
  text = mask(kUri, text);
  text = mask(kKeyValue, text);
  text = mask(kQuery, text);
  return text;
}

void ScrubPasswordsFromArgv(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string masked = MaskPasswords(argv[i]);
    if (masked.size() == std::strlen(argv[i])) std::memcpy(argv[i], masked.data(), masked.size());
  }
}

}  // namespace pgcourier::cli
