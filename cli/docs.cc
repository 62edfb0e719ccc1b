#include "docs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "cli_support.h"

namespace pgcourier::cli {
namespace {

// How an option's value is completed.
enum class ValueKind { kNone, kChoice, kFile, kDirectory, kOther };

// What the documentation says about one option, read from CLI11's Option.
struct OptionDoc {
  std::vector<std::string> names;  // "-j", "--jobs"
  std::string placeholder;         // "INT"; empty for a flag
  bool value_optional = false;     // --watch [SECONDS]
  bool repeatable = false;
  std::vector<std::string> choices;  // IsMember's set
  std::vector<std::string> checks;   // other validators: "INT in [1 - 256]", "POSITIVE"
  std::string default_value;
  std::string description;
  std::vector<std::string> needs;
  std::vector<std::string> excludes;
  ValueKind kind = ValueKind::kNone;
};

std::vector<std::string> SplitList(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : text) {
    if (c == separator) {
      parts.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  parts.push_back(part);
  return parts;
}

std::vector<std::string> OptionNames(const std::set<CLI::Option*>& options) {
  std::vector<std::string> names;
  names.reserve(options.size());
  for (const CLI::Option* o : options) names.push_back(o->get_name());
  std::sort(names.begin(), names.end());
  return names;
}

// The validators' descriptions, in the order get_type_name() appends them.
std::vector<std::string> ValidatorDescriptions(CLI::Option* option) {
  std::vector<std::string> descriptions;
  for (int i = 0;; ++i) {
    try {
      std::string description = option->get_validator(i)->get_description();
      if (!description.empty()) descriptions.push_back(description);
    } catch (const CLI::OptionNotFound&) {
      break;
    }
  }
  return descriptions;
}

OptionDoc Describe(CLI::Option* option) {
  OptionDoc doc;
  for (const std::string& s : option->get_snames()) doc.names.push_back("-" + s);
  for (const std::string& l : option->get_lnames()) doc.names.push_back("--" + l);
  doc.description = option->get_description();
  doc.default_value = option->get_default_str();
  doc.needs = OptionNames(option->get_needs());
  doc.excludes = OptionNames(option->get_excludes());
  doc.repeatable = option->get_items_expected_max() >= CLI::detail::expected_max_vector_size;
  if (option->get_items_expected_max() == 0) return doc;  // a flag

  // get_type_name() is the placeholder followed by ":<description>" of each
  // validator; the placeholder itself may hold a colon (ADDRESS:PORT).
  std::string full = option->get_type_name();
  std::vector<std::string> validators = ValidatorDescriptions(option);
  for (std::size_t i = validators.size(); i-- > 0;) {
    const std::string suffix = ":" + validators[i];
    if (full.size() >= suffix.size() && full.ends_with(suffix))
      full.resize(full.size() - suffix.size());
  }
  doc.placeholder = full.empty() ? "VALUE" : full;
  doc.value_optional = option->get_expected_min() == 0;
  for (const std::string& v : validators) {
    if (v.size() >= 2 && v.front() == '{' && v.back() == '}') {
      doc.choices = SplitList(v.substr(1, v.size() - 2), ',');
    } else {
      doc.checks.push_back(v);
    }
  }
  const std::string& name = doc.names.back();
  if (!doc.choices.empty()) {
    doc.kind = ValueKind::kChoice;
  } else if (doc.placeholder == "FILE") {
    doc.kind = ValueKind::kFile;
  } else if (name.ends_with("dir")) {
    doc.kind = ValueKind::kDirectory;
  } else {
    doc.kind = ValueKind::kOther;
  }
  return doc;
}

// The options --help lists (those in a named group), in its order.
std::vector<OptionDoc> VisibleOptions(CLI::App& command) {
  std::vector<OptionDoc> docs;
  for (CLI::Option* option : command.get_options({})) {
    if (!option->nonpositional() || option->get_group().empty()) continue;
    docs.push_back(Describe(option));
  }
  return docs;
}

// The first sentence of a description, without its full stop.
std::string FirstSentence(const std::string& text) {
  std::string::size_type end = text.find(". ");
  // "e.g. 10GB" and "i.e. ..." end no sentence.
  while (end != std::string::npos && end >= 3 &&
         (text.compare(end - 3, 3, "e.g") == 0 || text.compare(end - 3, 3, "i.e") == 0)) {
    end = text.find(". ", end + 2);
  }
  std::string sentence = end == std::string::npos ? text : text.substr(0, end);
  if (!sentence.empty() && sentence.back() == '.') sentence.pop_back();
  return sentence;
}

// --- roff ----------------------------------------------------------------

// Text for a roff line: backslashes escaped, the hyphens of words that start
// with one (options, typed as shown) as \- so that they copy as ASCII
// hyphen-minus, `code` in bold, and a leading dot or quote made harmless.
std::string Roff(const std::string& text) {
  std::string out;
  bool option_word = false;
  bool code = false;
  char previous = ' ';
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0) option_word = false;
    if (c == '-' && (option_word || std::isalnum(static_cast<unsigned char>(previous)) == 0)) {
      option_word = true;
      out += "\\-";
    } else if (c == '\\') {
      out += "\\e";
    } else if (c == '`') {
      out += code ? "\\fR" : "\\fB";
      code = !code;
    } else {
      out += c;
    }
    previous = c;
  }
  if (code) out += "\\fR";
  if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
  return out;
}

std::string RoffOptionHead(const OptionDoc& doc) {
  std::string head;
  for (const std::string& name : doc.names) {
    if (!head.empty()) head += ", ";
    head += "\\fB" + Roff(name) + "\\fR";
  }
  if (!doc.placeholder.empty()) {
    const std::string value = "\\fI" + Roff(doc.placeholder) + "\\fR";
    head += doc.value_optional ? " [" + value + "]" : " " + value;
  }
  return head;
}

std::string JoinWith(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::string RoffOption(const OptionDoc& doc) {
  std::string text = ".TP\n" + RoffOptionHead(doc) + "\n" + Roff(doc.description) + "\n";
  std::vector<std::string> facts;
  if (!doc.choices.empty()) facts.push_back("One of: " + JoinWith(doc.choices, ", ") + ".");
  for (const std::string& check : doc.checks) facts.push_back("Value: " + check + ".");
  if (!doc.default_value.empty()) facts.push_back("Default: " + doc.default_value + ".");
  if (doc.repeatable) facts.emplace_back("Repeatable.");
  if (!doc.needs.empty()) facts.push_back("Needs " + JoinWith(doc.needs, ", ") + ".");
  if (!doc.excludes.empty())
    facts.push_back("Cannot be used with " + JoinWith(doc.excludes, ", ") + ".");
  if (!facts.empty()) text += ".br\n" + Roff(JoinWith(facts, " ")) + "\n";
  return text;
}

std::string RoffOptions(CLI::App& command) {
  std::string text = ".SH OPTIONS\n";
  for (const OptionDoc& doc : VisibleOptions(command)) text += RoffOption(doc);
  return text;
}

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string RoffHeader(const std::string& page, const std::string& summary,
                       const std::string& version) {
  return fmt::format(
      ".\\\" Generated from pgcourier's command line definition (cli/docs.cc); do not edit.\n"
      ".TH {} 1 \"\" \"pgcourier {}\" \"pgcourier manual\"\n"
      ".nh\n.ad l\n"
      ".SH NAME\n{} \\- {}\n",
      Roff(Upper(page)), version, Roff(page), Roff(summary));
}

std::string RoffMainSections(CLI::App& app) {
  std::string text =
      ".SH SYNOPSIS\n\\fBpgcourier\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fICOMMAND "
      "OPTIONS\\fR]\n.SH DESCRIPTION\n" +
      Roff(app.get_description()) + "\n.SH COMMANDS\n";
  for (CLI::App* command : VisibleCommands(app)) {
    text += fmt::format(
        ".TP\n\\fB{}\\fR\n{}\n.br\nSee \\fB{}\\fR(1).\n", Roff(command->get_name()),
        Roff(command->get_description()),
        Roff(ManPageName(app, command).substr(0, ManPageName(app, command).size() - 2)));
  }
  text += RoffOptions(app);
  text += fmt::format(
      ".SH EXIT STATUS\n"
      ".TP\n{}\nReady, or done (warnings allowed).\n"
      ".TP\n{}\nBlocked: checks failed, or the operation failed; the output says what to fix.\n"
      ".TP\n{}\nBad arguments or input.\n"
      ".TP\n{}\nCancelled (Ctrl\\-C).\n",
      kExitOk, kExitBlocked, kExitUsage, kExitCancelled);
  text += ".SH ENVIRONMENT\n";
  const std::pair<const char*, const char*> variables[] = {
      {"PGCOURIER_SOURCE, PGCOURIER_TARGET",
       "The source and target connection strings when --source and --target are not given. "
       "Passwords can also come from PGPASSWORD or a .pgpass file, as libpq takes them."},
      {"PGCOURIER_SERVE_TOKEN", "The token of status --serve when --token-file is not given."},
      {"PGCOURIER_STALL_TIMEOUT",
       "Seconds a COPY stream may move no byte before it fails and is retried (default 600)."},
      {"PGCOURIER_LONG_TRANSACTION_SECONDS",
       "How long a transaction on the source may be open before check warns about it "
       "(default 300)."},
      {"NO_COLOR", "When set, check prints no colours."},
  };
  for (const auto& [name, meaning] : variables)
    text += ".TP\n\\fB" + Roff(name) + "\\fR\n" + Roff(meaning) + "\n";
  return text;
}

std::string SeeAlso(CLI::App& app, const CLI::App* current) {
  std::vector<std::string> pages;
  if (current != nullptr) pages.emplace_back("\\fBpgcourier\\fR(1)");
  for (CLI::App* command : VisibleCommands(app)) {
    if (command == current) continue;
    std::string name = ManPageName(app, command);
    pages.push_back("\\fB" + Roff(name.substr(0, name.size() - 2)) + "\\fR(1)");
  }
  return ".SH SEE ALSO\n" + JoinWith(pages, ",\n") + "\n";
}

// --- shells ----------------------------------------------------------------

std::string AllNames(const std::vector<OptionDoc>& docs) {
  std::vector<std::string> names;
  for (const OptionDoc& doc : docs) names.insert(names.end(), doc.names.begin(), doc.names.end());
  return JoinWith(names, " ");
}

// The bash `case` arms that complete the value of the option before the
// cursor, for one command ("" for the application's own options).
std::string BashValueArms(const std::string& command, const std::vector<OptionDoc>& docs) {
  std::string arms;
  std::vector<std::string> other;
  for (const OptionDoc& doc : docs) {
    if (doc.kind == ValueKind::kNone) continue;
    std::vector<std::string> patterns;
    for (const std::string& name : doc.names)
      patterns.push_back("\"" + command + ":" + name + "\"");
    const std::string pattern = JoinWith(patterns, " | ");
    switch (doc.kind) {
      case ValueKind::kChoice:
        arms += fmt::format("    {})\n      _pgcourier_reply -W \"{}\"\n      return ;;\n", pattern,
                            JoinWith(doc.choices, " "));
        break;
      case ValueKind::kFile:
        arms += fmt::format("    {})\n      _pgcourier_reply -f\n      return ;;\n", pattern);
        break;
      case ValueKind::kDirectory:
        arms += fmt::format("    {})\n      _pgcourier_reply -d\n      return ;;\n", pattern);
        break;
      default:
        // An optional value (--watch [SECONDS]) may be left out: complete on.
        if (!doc.value_optional) other.push_back(pattern);
        break;
    }
  }
  // Values nothing can guess (connection strings, numbers): offer nothing
  // rather than option names.
  if (!other.empty()) arms += fmt::format("    {})\n      return ;;\n", JoinWith(other, " | "));
  return arms;
}

// Single-quoted for zsh: ' becomes '\''.
std::string ZshQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Text inside an _arguments [description]: ] and \ escaped.
std::string ZshDescription(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// One _arguments spec per name of the option, one per line.
std::string ZshOptionSpecs(const OptionDoc& doc) {
  std::string exclusion;
  if (doc.names.size() > 1 && !doc.repeatable) exclusion = "(" + JoinWith(doc.names, " ") + ")";
  std::string value;
  if (!doc.placeholder.empty()) {
    std::string message;
    for (char c : doc.placeholder) message += c == ':' ? std::string("\\:") : std::string(1, c);
    std::string action;
    if (doc.kind == ValueKind::kChoice) action = "(" + JoinWith(doc.choices, " ") + ")";
    if (doc.kind == ValueKind::kFile) action = "_files";
    if (doc.kind == ValueKind::kDirectory) action = "_files -/";
    value = (doc.value_optional ? "::" : ":") + message + ":" + action;
  }
  std::string specs;
  for (const std::string& name : doc.names) {
    std::string separator;
    if (!doc.placeholder.empty()) separator = name.starts_with("--") ? "=" : "+";
    if (!doc.placeholder.empty() && doc.value_optional) separator = "=-";
    const std::string spec = exclusion + (doc.repeatable ? "*" : "") + name + separator + "[" +
                             ZshDescription(FirstSentence(doc.description)) + "]" + value;
    specs += "    " + ZshQuote(spec) + " \\\n";
  }
  return specs;
}

std::string ZshFunctionName(const CLI::App* command) {
  std::string name = "_pgcourier_" + command->get_name();
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

}  // namespace

std::vector<CLI::App*> VisibleCommands(CLI::App& app) {
  return app.get_subcommands([](CLI::App* command) { return !command->get_group().empty(); });
}

std::string ManPageName(const CLI::App& app, const CLI::App* command) {
  if (command == nullptr) return app.get_name() + ".1";
  return app.get_name() + "-" + command->get_name() + ".1";
}

std::string ManPage(CLI::App& app, CLI::App* command, const std::string& version) {
  if (command == nullptr) {
    std::string summary = app.get_description();
    if (summary.starts_with(app.get_name() + " ")) summary.erase(0, app.get_name().size() + 1);
    return RoffHeader(app.get_name(), FirstSentence(summary), version) + RoffMainSections(app) +
           SeeAlso(app, nullptr);
  }
  const std::string page = app.get_name() + "-" + command->get_name();
  return RoffHeader(page, FirstSentence(command->get_description()), version) +
         fmt::format(
             ".SH SYNOPSIS\n\\fBpgcourier\\fR [\\fIGLOBAL OPTIONS\\fR] \\fB{}\\fR "
             "[\\fIOPTIONS\\fR]\n.SH DESCRIPTION\n{}\n",
             Roff(command->get_name()), Roff(command->get_description())) +
         RoffOptions(*command) +
         ".PP\nThe global options are in \\fBpgcourier\\fR(1); they go before the command.\n" +
         SeeAlso(app, command);
}

std::string BashCompletion(CLI::App& app) {
  std::vector<CLI::App*> commands = VisibleCommands(app);
  std::vector<std::string> names;
  names.reserve(commands.size());
  for (const CLI::App* command : commands) names.push_back(command->get_name());
  std::string value_arms = BashValueArms("", VisibleOptions(app));
  std::string option_arms = fmt::format(
      "    \"\")\n      opts=\"{}\"\n      if [[ \"${{cur}}\" != -* ]]; then\n        "
      "_pgcourier_reply -W \"{}\"\n        return\n      fi ;;\n",
      AllNames(VisibleOptions(app)), JoinWith(names, " "));
  for (CLI::App* command : commands) {
    std::vector<OptionDoc> docs = VisibleOptions(*command);
    value_arms += BashValueArms(command->get_name(), docs);
    option_arms +=
        fmt::format("    {})\n      opts=\"{}\" ;;\n", command->get_name(), AllNames(docs));
  }
  return fmt::format(
      "# bash completion for pgcourier. Generated from its command line definition\n"
      "# (cli/docs.cc) when pgcourier is built: do not edit.\n\n"
      "# _pgcourier_reply COMPGEN-ARGS...: COMPREPLY from compgen for the current word.\n"
      "_pgcourier_reply() {{\n"
      "  case \"$1\" in -f | -d) compopt -o filenames 2>/dev/null ;; esac\n"
      "  mapfile -t COMPREPLY < <(compgen \"$@\" -- \"${{cur}}\")\n"
      "}}\n\n"
      "_pgcourier() {{\n"
      "  local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" prev=\"\" cmd=\"\" opts=\"\" i\n"
      "  COMPREPLY=()\n"
      "  ((COMP_CWORD > 0)) && prev=\"${{COMP_WORDS[COMP_CWORD - 1]}}\"\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case \"${{COMP_WORDS[i]}}\" in\n"
      "      {}) cmd=\"${{COMP_WORDS[i]}}\"; break ;;\n"
      "    esac\n"
      "  done\n"
      "  case \"${{cmd}}:${{prev}}\" in\n{}"
      "  esac\n"
      "  case \"${{cmd}}\" in\n{}"
      "  esac\n"
      "  _pgcourier_reply -W \"${{opts}}\"\n"
      "}}\n\n"
      "complete -F _pgcourier pgcourier\n",
      JoinWith(names, " | "), value_arms, option_arms);
}

std::string ZshCompletion(CLI::App& app) {
  std::vector<CLI::App*> commands = VisibleCommands(app);
  std::string text =
      "#compdef pgcourier\n"
      "# zsh completion for pgcourier. Generated from its command line definition\n"
      "# (cli/docs.cc) when pgcourier is built: do not edit.\n\n";
  std::string described;
  std::string dispatch;
  for (CLI::App* command : commands) {
    text += ZshFunctionName(command) + "() {\n  _arguments -s -S \\\n";
    for (const OptionDoc& doc : VisibleOptions(*command)) text += ZshOptionSpecs(doc);
    text += "    && return 0\n  return 1\n}\n\n";
    described += "    " +
                 ZshQuote(command->get_name() + ":" + FirstSentence(command->get_description())) +
                 "\n";
    dispatch += fmt::format("        {}) {} ;;\n", command->get_name(), ZshFunctionName(command));
  }
  text +=
      "_pgcourier() {\n  local curcontext=\"$curcontext\" state line\n"
      "  typeset -A opt_args\n  _arguments -C -s -S \\\n";
  for (const OptionDoc& doc : VisibleOptions(app)) text += ZshOptionSpecs(doc);
  text += fmt::format(
      "    '1: :->command' \\\n"
      "    '*:: :->args' \\\n"
      "    && return 0\n"
      "  case $state in\n"
      "    command)\n"
      "      local -a commands\n"
      "      commands=(\n{}      )\n"
      "      _describe -t commands 'pgcourier command' commands\n"
      "      ;;\n"
      "    args)\n"
      "      case $words[1] in\n{}"
      "      esac\n"
      "      ;;\n"
      "  esac\n"
      "}}\n\n"
      "_pgcourier \"$@\"\n",
      described, dispatch);
  return text;
}

}  // namespace pgcourier::cli
