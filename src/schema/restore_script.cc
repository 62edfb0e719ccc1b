#include "schema/restore_script.h"

#include <fmt/format.h>

#include <cctype>
#include <utility>

namespace pgcourier {
namespace {

bool IsIdentChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '_' || u >= 0x80;
}

bool IsIdentStart(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalpha(u) != 0 || c == '_' || u >= 0x80;
}

// Reads the script once, from the start; see ParseRestoreScript.
class ScriptReader {
 public:
  explicit ScriptReader(std::string_view script) : s_(script) {}

  Result<std::vector<ScriptEntry>> Read() {
    current_.line = 1;
    while (i_ < s_.size()) {
      if (at_line_start_ && StartsEntry()) {
        Finish();
        StartEntry();
        continue;
      }
      const char c = s_[i_];
      const char next = i_ + 1 < s_.size() ? s_[i_ + 1] : '\0';
      Status step = Status::Ok();
      if (c == '-' && next == '-') {
        size_t end = s_.find('\n', i_);
        Take(end == std::string_view::npos ? s_.size() : end, false);
      } else if (c == '/' && next == '*') {
        step = BlockComment();
      } else if (c == '\'') {
        step = QuotedString();
      } else if (c == '"') {
        step = Quoted('"', "a quoted identifier");
      } else if (c == '$' && DollarQuote()) {
        // taken
      } else if (c == '\\') {
        step = MetaCommand();
      } else {
        Take(i_ + 1, std::isspace(static_cast<unsigned char>(c)) == 0);
      }
      if (!step.ok()) return step;
    }
    Finish();
    return std::move(entries_);
  }

 private:
  // Appends s_[i_, end) to the current entry and moves on.
  void Take(size_t end, bool statement) {
    for (size_t k = i_; k < end; ++k) {
      if (s_[k] == '\n') ++line_;
    }
    current_.sql.append(s_.substr(i_, end - i_));
    if (statement) has_statement_ = true;
    at_line_start_ = end > i_ && s_[end - 1] == '\n';
    i_ = end;
  }

  Status Unterminated(const char* what, int line) const {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the schema script ends inside {} opened at line {}", what, line),
                  "the script pg_restore wrote is cut short; run the check again");
  }

  bool StartsEntry() const {
    const std::string_view rest = s_.substr(i_);
    return rest.rfind("-- Name: ", 0) == 0 || rest.rfind("-- Data for Name: ", 0) == 0;
  }

  void Finish() {
    if (has_statement_) entries_.push_back(std::move(current_));
    current_ = ScriptEntry{};
    has_statement_ = false;
  }

  // "-- Name: X; Type: Y; Schema: Z; Owner: W" (or "-- Data for Name: ...").
  void StartEntry() {
    size_t end = s_.find('\n', i_);
    if (end == std::string_view::npos) end = s_.size();
    const std::string_view header = s_.substr(i_, end - i_);
    auto field = [&](std::string_view key, std::string_view until) {
      size_t from = header.find(key);
      if (from == std::string_view::npos) return std::string();
      from += key.size();
      size_t to = until.empty() ? std::string_view::npos : header.find(until, from);
      return std::string(header.substr(from, to == std::string_view::npos ? to : to - from));
    };
    current_.name = field("Name: ", "; Type: ");
    current_.type = field("; Type: ", "; Schema: ");
    current_.schema = field("; Schema: ", "; Owner: ");
    current_.line = line_;
    Take(end, false);
  }

  Status BlockComment() {
    const int opened = line_;
    size_t k = i_ + 2;
    int depth = 1;
    while (k < s_.size() && depth > 0) {
      if (s_[k] == '/' && k + 1 < s_.size() && s_[k + 1] == '*') {
        ++depth;
        k += 2;
      } else if (s_[k] == '*' && k + 1 < s_.size() && s_[k + 1] == '/') {
        --depth;
        k += 2;
      } else {
        ++k;
      }
    }
    if (depth > 0) return Unterminated("a comment", opened);
    Take(k, false);
    return Status::Ok();
  }

  // '...' (quotes doubled), or E'...' with backslash escapes.
  Status QuotedString() {
    const bool escapes =
        i_ > 0 && (s_[i_ - 1] == 'E' || s_[i_ - 1] == 'e') && (i_ < 2 || !IsIdentChar(s_[i_ - 2]));
    if (!escapes) return Quoted('\'', "a string");
    const int opened = line_;
    size_t k = i_ + 1;
    while (k < s_.size()) {
      if (s_[k] == '\\') {
        k += 2;
      } else if (s_[k] == '\'') {
        if (k + 1 < s_.size() && s_[k + 1] == '\'') {
          k += 2;
        } else {
          break;
        }
      } else {
        ++k;
      }
    }
    if (k >= s_.size()) return Unterminated("a string", opened);
    Take(k + 1, true);
    return Status::Ok();
  }

  // A literal closed by `quote`, in which a doubled quote stands for itself.
  Status Quoted(char quote, const char* what) {
    const int opened = line_;
    size_t k = i_ + 1;
    for (;;) {
      k = s_.find(quote, k);
      if (k == std::string_view::npos) return Unterminated(what, opened);
      if (k + 1 < s_.size() && s_[k + 1] == quote) {
        k += 2;
        continue;
      }
      break;
    }
    Take(k + 1, true);
    return Status::Ok();
  }

  // $$...$$ or $tag$...$tag$; false (nothing taken) when the `$` opens no
  // dollar quote ($1, or part of a name such as a$b).
  bool DollarQuote() {
    if (i_ > 0 && IsIdentChar(s_[i_ - 1])) return false;
    size_t k = i_ + 1;
    if (k < s_.size() && s_[k] != '$') {
      if (!IsIdentStart(s_[k])) return false;
      while (k < s_.size() && IsIdentChar(s_[k]) && s_[k] != '$') ++k;
      if (k >= s_.size() || s_[k] != '$') return false;
    }
    const std::string_view tag = s_.substr(i_, k + 1 - i_);
    const size_t close = s_.find(tag, k + 1);
    // An unterminated dollar quote runs to the end, as in psql; the server
    // then reports the statement.
    Take(close == std::string_view::npos ? s_.size() : close + tag.size(), true);
    return true;
  }

  Status MetaCommand() {
    size_t end = s_.find('\n', i_);
    if (end == std::string_view::npos) end = s_.size();
    const std::string_view command = s_.substr(i_, end - i_);
    size_t word_end = 1;
    while (word_end < command.size() &&
           std::isalpha(static_cast<unsigned char>(command[word_end]))) {
      ++word_end;
    }
    const std::string_view word = command.substr(1, word_end - 1);
    if (word == "restrict" || word == "unrestrict") {
      // Only a guard for psql: dropped, with its line.
      for (size_t k = i_; k < end; ++k) {
        if (s_[k] == '\n') ++line_;
      }
      i_ = end;
      return Status::Ok();
    }
    std::string shown(command.substr(0, std::min<size_t>(command.size(), 80)));
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the schema script holds the psql meta-command \"{}\" at line {}; "
                              "pgcourier runs SQL only and does not interpret psql commands",
                              shown, line_),
                  "the archive pg_dump made holds something pgcourier cannot replay; run "
                  "pg_restore --file=- on the schema archive to see the script");
  }

  std::string_view s_;
  size_t i_ = 0;
  int line_ = 1;
  bool at_line_start_ = true;
  bool has_statement_ = false;
  ScriptEntry current_;
  std::vector<ScriptEntry> entries_;
};

}  // namespace

std::string ScriptEntry::Describe() const {
  if (type.empty()) return "preamble";
  if (schema.empty() || schema == "-") return type + " " + name;
  return type + " " + schema + "." + name;
}

Result<std::vector<ScriptEntry>> ParseRestoreScript(std::string_view script) {
  return ScriptReader(script).Read();
}

}  // namespace pgcourier
