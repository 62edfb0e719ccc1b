// The man pages and shell completion the build writes (build/docs/, by
// pgcourier_docs) against `pgcourier --help`, as their users meet them: the
// pages rendered by groff, the bash completion run by bash. Every command
// --help lists has its page and completion, and each of them names exactly
// the options `pgcourier <command> --help` prints: they cannot drift.
// Also: `--version` prints the project's version and the commit built.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "util/process.h"

namespace pgcourier {
namespace {

namespace fs = std::filesystem;
using testing::RunCli;

using Names = std::set<std::string>;

fs::path DocsDir() { return PGCOURIER_DOCS_DIR; }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Help(const std::string& command) {
  std::vector<std::string> args;
  if (!command.empty()) args.push_back(command);
  args.emplace_back("--help");
  ProcessResult r = RunCli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// The option names of a --help: "  -j,--jobs INT ..." gives -j and --jobs.
Names HelpOptions(const std::string& help) {
  Names names;
  bool in_options = false;
  for (const std::string& line : Lines(help)) {
    if (line.empty() || (line.back() == ':' && !line.starts_with(" "))) {
      in_options = line == "Options:";
      continue;
    }
    if (!in_options || !line.starts_with("  -")) continue;
    std::string first = line.substr(2, line.find(' ', 2) - 2);
    std::istringstream parts(first);
    for (std::string name; std::getline(parts, name, ',');) names.insert(name);
  }
  return names;
}

// The commands a --help lists under "Subcommands:".
std::vector<std::string> HelpCommands(const std::string& help) {
  std::vector<std::string> commands;
  bool in_commands = false;
  for (const std::string& line : Lines(help)) {
    if (line.empty()) in_commands = false;
    if (in_commands && line.starts_with("  ") && line[2] != ' ')
      commands.push_back(line.substr(2, line.find(' ', 2) - 2));
    if (line == "Subcommands:") in_commands = true;
  }
  return commands;
}

fs::path ManPage(const std::string& command) {
  return DocsDir() / "man" / (command.empty() ? "pgcourier.1" : "pgcourier-" + command + ".1");
}

// The option names of a man page's OPTIONS section as groff renders it:
// each option's tag line ("       -j, --jobs INT") at the section's indent.
Names ManOptions(const fs::path& page) {
  Result<ProcessResult> r =
      RunProcess({"groff", "-man", "-Tascii", "-P-c", "-P-b", "-P-u", "-rLL=300n", page.string()});
  EXPECT_TRUE(r.ok() && r->ok()) << (r.ok() ? r->err : r.status().ToString());
  Names names;
  if (!r.ok()) return names;
  bool in_options = false;
  for (const std::string& line : Lines(r->out)) {
    if (!line.empty() && line[0] != ' ') in_options = line == "OPTIONS";
    if (!in_options || !line.starts_with("       -") || line.starts_with("        ")) continue;
    // A short tag has its description on the same line, after two spaces.
    std::string tag = line.substr(7, line.find("  ", 7) - 7);
    std::istringstream parts(tag);
    for (std::string part; std::getline(parts, part, ',');) {
      part.erase(0, part.find_first_not_of(' '));
      names.insert(part.substr(0, part.find(' ')));
    }
  }
  return names;
}

// What the bash completion offers for `pgcourier <words...>` with the cursor
// on the last word.
Names BashComplete(const std::vector<std::string>& words) {
  std::string script =
      "source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
      "_pgcourier; printf '%s\\n' \"${COMPREPLY[@]}\"";
  std::vector<std::string> argv = {"bash",
                                   "--norc",
                                   "--noprofile",
                                   "-c",
                                   script,
                                   "bash",
                                   (DocsDir() / "completion" / "pgcourier").string(),
                                   "pgcourier"};
  argv.insert(argv.end(), words.begin(), words.end());
  Result<ProcessResult> r = RunProcess(argv);
  EXPECT_TRUE(r.ok() && r->ok()) << (r.ok() ? r->err : r.status().ToString());
  Names names;
  if (!r.ok()) return names;
  for (const std::string& line : Lines(r->out)) {
    if (!line.empty()) names.insert(line);
  }
  return names;
}

// The options of the zsh completion's _arguments specs for a command ("" for
// the application's own): one spec a line, '(exclusions)*--name=[...]...'.
Names ZshOptions(const std::string& command) {
  std::string function = "_pgcourier";
  if (!command.empty()) function += "_" + std::regex_replace(command, std::regex("-"), "_");
  std::string text = ReadFile(DocsDir() / "completion" / "_pgcourier");
  std::string::size_type begin = text.find("\n" + function + "() {\n");
  EXPECT_NE(begin, std::string::npos) << function << " is not in _pgcourier";
  Names names;
  if (begin == std::string::npos) return names;
  std::string body = text.substr(begin, text.find("\n}\n", begin) - begin);
  static const std::regex kSpec(R"(^\s+'(\([^)]*\))?\*?(-[^=+\[]+)[=+\[])");
  for (const std::string& line : Lines(body)) {
    std::smatch m;
    if (std::regex_search(line, m, kSpec)) names.insert(m[2].str());
  }
  return names;
}

TEST(Docs, EveryCommandHasItsManPageAndCompletion) {
  const std::string help = Help("");
  const std::vector<std::string> commands = HelpCommands(help);
  ASSERT_GE(commands.size(), 8u) << help;

  std::set<std::string> pages;
  for (const auto& entry : fs::directory_iterator(DocsDir() / "man")) {
    if (entry.path().extension() == ".1") pages.insert(entry.path().filename().string());
  }
  std::set<std::string> expected_pages = {"pgcourier.1"};
  for (const std::string& c : commands) expected_pages.insert("pgcourier-" + c + ".1");
  EXPECT_EQ(pages, expected_pages);
  for (const std::string& page : expected_pages) {
    EXPECT_TRUE(fs::exists(DocsDir() / "man" / (page + ".gz"))) << page << ".gz is missing";
  }

  EXPECT_EQ(BashComplete({""}), Names(commands.begin(), commands.end()));
  EXPECT_EQ(BashComplete({"mi"}), Names({"migrate"}));
  std::string zsh = ReadFile(DocsDir() / "completion" / "_pgcourier");
  for (const std::string& c : commands) {
    EXPECT_NE(zsh.find("\n    '" + c + ":"), std::string::npos) << c << " is not a zsh command";
  }
}

TEST(Docs, ManPagesAndCompletionNameExactlyTheOptionsOfHelp) {
  std::vector<std::string> commands = HelpCommands(Help(""));
  commands.insert(commands.begin(), "");  // the application's own options
  for (const std::string& command : commands) {
    SCOPED_TRACE(command.empty() ? "pgcourier" : "pgcourier " + command);
    const Names help = HelpOptions(Help(command));
    ASSERT_FALSE(help.empty());
    EXPECT_EQ(ManOptions(ManPage(command)), help) << "man page";
    std::vector<std::string> words;
    if (!command.empty()) words.push_back(command);
    words.emplace_back("-");
    EXPECT_EQ(BashComplete(words), help) << "bash completion";
    EXPECT_EQ(ZshOptions(command), help) << "zsh completion";
  }
}

// An option with a fixed set of values (CLI11's IsMember, shown by --help as
// TEXT:{a,b,c}) completes to exactly those values in bash.
TEST(Docs, BashCompletesTheChoicesOfHelp) {
  std::vector<std::string> commands = HelpCommands(Help(""));
  commands.insert(commands.begin(), "");
  static const std::regex kChoice(R"(^  (?:-\w,)?(--[\w-]+)(?:,-\w)? \w+:\{([^}]*)\})");
  int seen = 0;
  for (const std::string& command : commands) {
    for (const std::string& line : Lines(Help(command))) {
      std::smatch m;
      if (!std::regex_search(line, m, kChoice)) continue;
      Names choices;
      std::istringstream parts(m[2].str());
      for (std::string choice; std::getline(parts, choice, ',');) choices.insert(choice);
      std::vector<std::string> words;
      if (!command.empty()) words.push_back(command);
      words.push_back(m[1].str());
      words.emplace_back("");
      EXPECT_EQ(BashComplete(words), choices) << command << " " << m[1].str();
      ++seen;
    }
  }
  EXPECT_GE(seen, 2) << "no option with choices found in --help";
}

TEST(Docs, ManPagesRenderWithoutWarnings) {
  for (const auto& entry : fs::directory_iterator(DocsDir() / "man")) {
    if (entry.path().extension() != ".1") continue;
    SCOPED_TRACE(entry.path().filename().string());
    Result<ProcessResult> r =
        RunProcess({"groff", "-man", "-Tutf8", "-ww", "-z", entry.path().string()});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 0);
    EXPECT_EQ(r->err, "");
    // What `man` shows: a NAME line "pgcourier-check - ..." and a SYNOPSIS.
    Result<ProcessResult> shown = RunProcess({"man", "-l", entry.path().string()});
    ASSERT_TRUE(shown.ok()) << shown.status().ToString();
    EXPECT_NE(shown->out.find("SYNOPSIS"), std::string::npos) << shown->out << shown->err;
  }
}

TEST(Docs, CompletionScriptsParse) {
  Result<ProcessResult> bash =
      RunProcess({"bash", "-n", (DocsDir() / "completion" / "pgcourier").string()});
  ASSERT_TRUE(bash.ok()) << bash.status().ToString();
  EXPECT_EQ(bash->exit_code, 0) << bash->err;
  if (!fs::exists("/usr/bin/zsh") && !fs::exists("/bin/zsh")) {
    GTEST_SKIP() << "zsh is not installed (scripts/setup.sh installs it)";
  }
  Result<ProcessResult> zsh =
      RunProcess({"zsh", "-n", (DocsDir() / "completion" / "_pgcourier").string()});
  ASSERT_TRUE(zsh.ok()) << zsh.status().ToString();
  EXPECT_EQ(zsh->exit_code, 0) << zsh->err;
}

// "pgcourier 0.1.0 (commit 1a2b3c4d5e6f)": the project's version from CMake
// and the commit of the checkout built ("-dirty" with changes in it).
TEST(Version, PrintsTheProjectVersionAndTheCommit) {
  ProcessResult r = RunCli({"--version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string commit = "unknown";
  Result<ProcessResult> git =
      RunProcess({"git", "-C", PGCOURIER_SOURCE_DIR, "rev-parse", "--short=12", "HEAD"});
  if (fs::exists(fs::path(PGCOURIER_SOURCE_DIR) / ".git") && git.ok() && git->ok()) {
    commit = git->out.substr(0, git->out.find('\n'));
  }
  const std::string expected =
      fmt::format("pgcourier {} (commit {}", PGCOURIER_PROJECT_VERSION, commit);
  EXPECT_TRUE(r.out == expected + ")\n" || r.out == expected + "-dirty)\n")
      << "printed: " << r.out << "expected: " << expected << ")";
}

}  // namespace
}  // namespace pgcourier
