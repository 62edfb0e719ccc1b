// pgcourier_docs: writes pgcourier's man pages and shell completion from
// its command line definition. The build runs it (cli/CMakeLists.txt):
//
//   pgcourier_docs OUTPUT_DIR
//
// writes OUTPUT_DIR/man/pgcourier.1, OUTPUT_DIR/man/pgcourier-<command>.1,
// OUTPUT_DIR/completion/pgcourier (bash) and OUTPUT_DIR/completion/_pgcourier
// (zsh).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "app.h"
#include "docs.h"
#include "version.h"

namespace {

bool WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "pgcourier_docs: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pgcourier::cli;  // NOLINT(google-build-using-namespace)
  if (argc != 2) {
    std::fprintf(stderr, "usage: pgcourier_docs OUTPUT_DIR\n");
    return 2;
  }
  const std::filesystem::path root = argv[1];
  std::error_code error;
  std::filesystem::create_directories(root / "man", error);
  std::filesystem::create_directories(root / "completion", error);
  if (error) {
    std::fprintf(stderr, "pgcourier_docs: cannot create %s: %s\n", root.c_str(),
                 error.message().c_str());
    return 1;
  }
  std::unique_ptr<CommandLine> line = MakeCommandLine();
  CLI::App& app = line->app;
  bool ok = WriteFile(root / "man" / ManPageName(app, nullptr), ManPage(app, nullptr, Version()));
  for (CLI::App* command : VisibleCommands(app)) {
    ok =
        WriteFile(root / "man" / ManPageName(app, command), ManPage(app, command, Version())) && ok;
  }
  ok = WriteFile(root / "completion" / "pgcourier", BashCompletion(app)) && ok;
  ok = WriteFile(root / "completion" / "_pgcourier", ZshCompletion(app)) && ok;
  return ok ? 0 : 1;
}
