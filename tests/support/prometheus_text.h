// A strict parser of the Prometheus text exposition format (0.0.4), for
// tests that read /metrics as a scraper would: every line is a HELP, TYPE,
// comment, blank or sample line of the grammar; names and label names are
// valid; label values use only the three escapes; values are floats (NaN,
// +Inf, -Inf too); a family's TYPE comes before its samples, once; a
// family's samples are together; no series repeats; a counter's name ends
// in _total. Header-only, so unit tests can use it too.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pgcourier::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::string help;
  std::vector<PromSample> samples;
};

struct PromExposition {
  std::string error;  // empty when it parsed; else "line N: what"
  std::map<std::string, PromFamily> families;

  // The sample of `name` with exactly `labels`, or null.
  const PromSample* Find(const std::string& name,
                         const std::map<std::string, std::string>& labels = {}) const {
    auto f = families.find(name);
    if (f == families.end()) return nullptr;
    for (const auto& s : f->second.samples) {
      if (s.labels == labels) return &s;
    }
    return nullptr;
  }
};

namespace prom_detail {

inline bool NameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
inline bool NameChar(char c) { return NameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }
inline bool LabelStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
inline bool LabelChar(char c) {
  return LabelStart(c) || std::isdigit(static_cast<unsigned char>(c));
}

inline bool ValidName(std::string_view s) {
  if (s.empty() || !NameStart(s[0])) return false;
  for (char c : s) {
    if (!NameChar(c)) return false;
  }
  return true;
}

inline bool ParseValue(std::string_view text, double* value) {
  if (text == "NaN") return *value = NAN, true;
  if (text == "+Inf") return *value = INFINITY, true;
  if (text == "-Inf") return *value = -INFINITY, true;
  if (text.empty()) return false;
  const std::string copy(text);
  char* end = nullptr;
  *value = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size() && !std::isnan(*value) && !std::isinf(*value);
}

// One sample line; false with `error` set when it breaks the grammar.
inline bool ParseSample(std::string_view line, PromSample* out, std::string* error) {
  size_t i = 0;
  while (i < line.size() && NameChar(line[i])) ++i;
  out->name = std::string(line.substr(0, i));
  if (!ValidName(out->name)) return *error = "invalid metric name", false;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t start = i;
      if (!LabelStart(line[i])) return *error = "invalid label name", false;
      while (i < line.size() && LabelChar(line[i])) ++i;
      const std::string label(line.substr(start, i - start));
      if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
        return *error = "expected =\" after label " + label, false;
      }
      i += 2;
      std::string value;
      for (;; ++i) {
        if (i >= line.size()) return *error = "unterminated label value", false;
        if (line[i] == '"') break;
        if (line[i] == '\\') {
          if (++i >= line.size()) return *error = "unterminated escape", false;
          if (line[i] == 'n') {
            value += '\n';
          } else if (line[i] == '\\' || line[i] == '"') {
            value += line[i];
          } else {
            return *error = "invalid escape in label value", false;
          }
        } else {
          value += line[i];
        }
      }
      ++i;  // the closing quote
      if (!out->labels.emplace(label, value).second) return *error = "label repeated", false;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return *error = "unterminated label set", false;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ')
    return *error = "expected a space before the value", false;
  const std::string_view rest = line.substr(i + 1);
  const size_t space = rest.find(' ');
  if (!ParseValue(rest.substr(0, space), &out->value)) return *error = "invalid value", false;
  if (space != std::string_view::npos) {
    const std::string_view stamp = rest.substr(space + 1);
    if (stamp.empty()) return *error = "trailing space", false;
    for (char c : stamp) {
      if (!std::isdigit(static_cast<unsigned char>(c)) && c != '-')
        return *error = "invalid timestamp", false;
    }
  }
  return true;
}

// The family a sample belongs to: histogram and summary samples carry
// suffixes.
inline std::string FamilyOf(const std::string& name,
                            const std::map<std::string, PromFamily>& known) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto f = known.find(base);
      if (f != known.end() && (f->second.type == "histogram" || f->second.type == "summary"))
        return base;
    }
  }
  return name;
}

}  // namespace prom_detail

inline PromExposition ParsePrometheusText(std::string_view text) {
  using namespace prom_detail;
  PromExposition out;
  std::set<std::string> closed;  // families whose samples ended
  std::set<std::string> series;
  std::string current;
  if (!text.empty() && !text.ends_with('\n')) return out.error = "no final newline", out;
  size_t line_no = 0;
  auto fail = [&](const std::string& what) {
    out.error = "line " + std::to_string(line_no) + ": " + what;
    return out;
  };
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = text.find('\n', pos);
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      const std::string_view rest = line.substr(7);
      const size_t space = rest.find(' ');
      if (space == std::string_view::npos) return fail("HELP/TYPE without text");
      const std::string name(rest.substr(0, space));
      if (!ValidName(name)) return fail("invalid metric name " + name);
      PromFamily& family = out.families[name];
      if (closed.contains(name) || (current == name && !family.samples.empty())) {
        return fail("HELP/TYPE of " + name + " after its samples");
      }
      if (line[2] == 'H') {
        if (!family.help.empty()) return fail("HELP of " + name + " twice");
        family.help = std::string(rest.substr(space + 1));
      } else {
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (!family.type.empty()) return fail("TYPE of " + name + " twice");
        family.type = std::string(rest.substr(space + 1));
        if (!kTypes.contains(family.type)) return fail("unknown type " + family.type);
        if (family.type == "counter" && !name.ends_with("_total")) {
          return fail("counter " + name + " does not end in _total");
        }
      }
      if (current != name && !current.empty()) closed.insert(current);
      current = name;
      continue;
    }
    if (line.starts_with('#')) continue;  // a comment
    PromSample sample;
    std::string error;
    if (!ParseSample(line, &sample, &error)) return fail(error);
    const std::string family_name = FamilyOf(sample.name, out.families);
    if (closed.contains(family_name)) return fail("samples of " + family_name + " not together");
    if (current != family_name && !current.empty()) closed.insert(current);
    current = family_name;
    PromFamily& family = out.families[family_name];
    if (family.type.empty()) return fail(sample.name + " has no TYPE before it");
    std::string key = sample.name;
    for (const auto& [k, v] : sample.labels) key += "\x1f" + k + "=" + v;
    if (!series.insert(key).second) return fail("series repeated: " + sample.name);
    family.samples.push_back(std::move(sample));
  }
  return out;
}

}  // namespace pgcourier::testing
