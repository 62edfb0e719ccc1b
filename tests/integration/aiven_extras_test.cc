// Replication for users who may neither publish the tables (not their owner)
// nor create subscriptions (no superuser, PostgreSQL 15: no
// pg_create_subscription), as on Aiven: pgcourier goes through the
// aiven_extras extension, installing it where the server offers it and
// removing what it installed at cutover or cleanup, never what it found.
//
// The extension here is a stand-in (tests/fixtures/aiven_extras) with
// Aiven's documented function signatures and behaviour, offered by a private
// copy of the PostgreSQL installation that only this test's servers use.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <sstream>

#include "migrate/cleanup.h"
#include "migrate/cutover.h"
#include "migrate/migration.h"
#include "pg_cluster.h"
#include "state/store.h"
#include "state_names.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

// A private copy of the PostgreSQL 15 installation whose extension
// directory also holds the stand-in, so no other test's servers ever see it.
// PostgreSQL finds its share and lib directories relative to its own
// executable: the binaries are copied to the same relative place under
// `root`, the lib directory is a link, and the share directory a tree of
// links but for the extension directory. Returns the bin directory, or an
// empty string with `why`.
std::string PrivateInstallation(const std::filesystem::path& root, std::string& why) {
  namespace fs = std::filesystem;
  const std::string bin = testing::PgBinDir(15);
  Result<ProcessResult> config =
      RunProcess({bin + "/pg_config", "--bindir", "--sharedir", "--pkglibdir"}, {});
  if (bin.empty() || !config.ok() || !config->ok()) {
    why = "no pg_config for PostgreSQL 15 to place a private installation by";
    return "";
  }
  std::istringstream lines(config->out);
  std::string bindir, sharedir, pkglibdir;
  std::getline(lines, bindir);
  std::getline(lines, sharedir);
  std::getline(lines, pkglibdir);
  const fs::path from = fs::path(PGCOURIER_SOURCE_DIR) / "tests" / "fixtures" / "aiven_extras";
  std::error_code ec;
  const fs::path new_bin = root / fs::path(bindir).relative_path();
  const fs::path new_share = root / fs::path(sharedir).relative_path();
  const fs::path new_lib = root / fs::path(pkglibdir).relative_path();
  fs::create_directories(new_bin, ec);
  if (!ec) fs::create_directories(new_share / "extension", ec);
  if (!ec) fs::create_directories(new_lib.parent_path(), ec);
  for (const char* program : {"postgres", "initdb", "pg_ctl"}) {
    if (!ec) fs::copy_file(fs::path(bindir) / program, new_bin / program, ec);
  }
  if (!ec) fs::create_directory_symlink(pkglibdir, new_lib, ec);
  for (fs::directory_iterator it(sharedir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename() == "extension") continue;
    fs::create_symlink(it->path(), new_share / it->path().filename(), ec);
  }
  for (fs::directory_iterator it(fs::path(sharedir) / "extension", ec), end; !ec && it != end;
       it.increment(ec)) {
    fs::create_symlink(it->path(), new_share / "extension" / it->path().filename(), ec);
  }
  for (const char* file : {"aiven_extras.control", "aiven_extras--1.0.sql"}) {
    if (!ec) fs::copy_file(from / file, new_share / "extension" / file, ec);
  }
  // The servers run as another OS user when the tests run as root.
  for (fs::path p = new_bin; !ec && p != root.parent_path(); p = p.parent_path()) {
    fs::permissions(p,
                    fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                        fs::perms::others_read | fs::perms::others_exec,
                    ec);
  }
  if (ec) {
    why = "cannot make a private PostgreSQL installation in " + root.string() + ": " + ec.message();
    return "";
  }
  return new_bin.string();
}

class AivenExtrasTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    // The migration's user: on the source it may replicate, on the target
    // create databases; a superuser on neither.
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.source_role = {"mover", "mover-source", "REPLICATION"};
    options.target_role = {"mover", "mover-target", "CREATEDB"};
    char root_template[] = "/tmp/pgcourier-aiven-XXXXXX";
    ASSERT_NE(::mkdtemp(root_template), nullptr);
    root_ = root_template;
    std::string why;
    const std::string bin = PrivateInstallation(root_, why);
    if (bin.empty()) GTEST_SKIP() << why;
    // Only these two servers start from it.
    ::setenv("PGCOURIER_PG15_BINDIR", bin.c_str(), 1);
    StartServers(options);
    ::unsetenv("PGCOURIER_PG15_BINDIR");
    ASSERT_FALSE(HasFatalFailure());
    // The tables belong to the application's role; the migration's user may
    // read them and replicate, nothing more.
    ASSERT_TRUE(source_
                    ->Sql("CREATE ROLE app NOLOGIN; CREATE DATABASE shop; "
                          "GRANT CREATE ON DATABASE shop TO mover;")
                    .ok());
    Result<std::string> built = source_->Sql(
        "GRANT CREATE ON SCHEMA public TO app; SET ROLE app; "
        "CREATE TABLE public.items (id int PRIMARY KEY, v text); "
        "INSERT INTO public.items SELECT g, 'v' || g FROM generate_series(1, 2000) g; "
        "CREATE TABLE public.notes (v text); "
        "INSERT INTO public.notes SELECT 'n' || g FROM generate_series(1, 100) g; "
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO mover;",
        "shop");
    ASSERT_TRUE(built.ok()) << built.status().ToString();
  }

  MigrateOptions Options() const {
    MigrateOptions options = MigrationOptions("shop", Method::kReplication);
    options.check.source = source_->ConnString("shop", "mover", "mover-source");
    options.check.target = target_->ConnString("postgres", "mover", "mover-target");
    return options;
  }

  // Migrates and expects replication running through aiven_extras on both
  // sides.
  void MigrateThroughExtras() {
    ASSERT_NO_FATAL_FAILURE(testing::StartReplicating(Options()));
    // The publication is the user's (made through the extension), the
    // subscription the extension's superuser's.
    EXPECT_EQ(*source_->Sql("SELECT pubowner::regrole FROM pg_publication", "shop"), "mover");
    EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_publication_tables", "shop"), "1")
        << "items only: notes has no replica identity";
    EXPECT_EQ(*target_->Sql("SELECT subowner::regrole FROM pg_subscription"), "postgres");
    EXPECT_EQ(
        *target_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
        "1");
    ASSERT_TRUE(source_->Sql("INSERT INTO public.items VALUES (2001, 'late')", "shop").ok());
  }

  std::string Changes() {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    if (!store.ok()) return store.status().ToString();
    Result<std::vector<StoredChange>> changes = (*store)->Changes("shop");
    if (!changes.ok()) return changes.status().ToString();
    std::string out;
    for (const auto& c : *changes)
      out += Name(c.side) + std::string(" ") + c.object + " " + Name(c.state) + "; ";
    return out;
  }

  void TearDown() override {
    source_.reset();
    target_.reset();
    std::error_code ec;
    if (!root_.empty()) std::filesystem::remove_all(root_, ec);
  }

  std::string root_;  // the private installation
};

TEST_F(AivenExtrasTest, CutoverThroughTheExtensionRemovesWhatItInstalled) {
  MigrateThroughExtras();
  if (HasFatalFailure()) return;
  EXPECT_EQ(Changes(), "source extension aiven_extras made; target extension aiven_extras made; ");
  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.source = Options().check.source;
  cut.target = target_->ConnString("postgres", "mover", "mover-target");
  cut.timeout = std::chrono::seconds(60);
  cut.connect_timeout = std::chrono::seconds(10);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  ASSERT_EQ(cutover->databases.at(0).state, "done") << cutover->databases.at(0).error;
  EXPECT_EQ(*target_->Sql("SELECT count(*), max(id) FROM public.items", "shop"), "2001|2001");
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.notes", "shop"), "100");
  // Nothing of the replication, and not the extension pgcourier installed.
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_subscription"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_publication", "shop"), "0");
  EXPECT_EQ(
      *source_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
      "0");
  EXPECT_EQ(
      *target_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
      "0");
  EXPECT_EQ(Changes(),
            "source extension aiven_extras undone; target extension aiven_extras undone; ");
}

TEST_F(AivenExtrasTest, CleanupKeepsTheExtensionItFound) {
  // The source already had aiven_extras: pgcourier uses it and leaves it.
  ASSERT_TRUE(source_->Sql("CREATE EXTENSION aiven_extras", "shop").ok());
  MigrateThroughExtras();
  if (HasFatalFailure()) return;
  EXPECT_EQ(Changes(), "target extension aiven_extras made; ");
  CleanupOptions clean;
  clean.work_dir = dir_;
  clean.source = Options().check.source;
  clean.target = Options().check.target;
  clean.connect_timeout = std::chrono::seconds(10);
  Result<CleanupOutcome> cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  std::string problems;
  for (const auto& p : cleaned->problems) problems += p + "; ";
  EXPECT_TRUE(cleaned->ok()) << problems;
  EXPECT_EQ(cleaned->removed.size(), 3u);
  EXPECT_EQ(cleaned->undone.size(), 1u);
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_subscription"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_publication", "shop"), "0");
  EXPECT_EQ(
      *source_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
      "1")
      << "found there, so kept";
  EXPECT_EQ(
      *target_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
      "0");
  // Again: nothing left to do.
  cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok());
  EXPECT_TRUE(cleaned->removed.empty());
  EXPECT_TRUE(cleaned->undone.empty());
}

}  // namespace
}  // namespace pgcourier
