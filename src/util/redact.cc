#include "util/redact.h"

#include <regex>

namespace pgcourier {

std::string MaskPasswords(std::string text) {
  // URI userinfo: scheme://user:password@host. Greedy up to the last '@', so
  // an unencoded '@' in the password is masked too (over-masking is safe).
  static const std::regex kUri(R"(((?:postgres|postgresql)://[^:/@\s]*:)(\S*)(@))",
                               std::regex::icase);
  // key=value: password=secret or password='quoted secret'
  static const std::regex kKeyValue(
      R"(((?:^|\s)(?:password|sslpassword)\s*=\s*)('(?:[^'\\]|\\.)*'|\S+))");
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

}  // namespace pgcourier
