// `VerifyDatabase` against real servers: the same database built on two
// servers (15 -> 15 and, where installed, 15 -> 17) matches, and each kind of
// difference made on the target is found and named.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "pg/connection.h"
#include "pg_cluster.h"
#include "report/verify_report.h"
#include "two_servers.h"
#include "verify/verifier.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::PgCluster;

// Run on both servers: every kind of object the verifier compares, and
// values whose text form is easy to get wrong (tabs, newlines, backslashes,
// NULL and the empty string, NaN and infinities, -0, time zones, bytea with
// NUL bytes, jsonb, arrays, composites).
constexpr const char* kAppDatabase = R"sql(
CREATE DATABASE app;
\c app
CREATE EXTENSION citext;
CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN shop.positive AS integer CHECK (VALUE > 0);
CREATE TYPE shop.span AS RANGE (subtype = float8);
CREATE TYPE shop.pair AS (a integer, b text);
CREATE TABLE shop.items (
  id integer PRIMARY KEY,
  label text,
  amount numeric(16, 4),
  ratio float8,
  small real,
  at timestamptz,
  at_local timestamp,
  day date,
  wait interval,
  raw bytea,
  doc jsonb,
  tags text[],
  grid integer[],
  mood shop.mood,
  qty shop.positive,
  price money,
  flag boolean,
  uid uuid,
  pair shop.pair,
  email public.citext,
  ip inet,
  noon timetz,
  range shop.span
);
INSERT INTO shop.items VALUES
  (1, E'tab\there\nnew line\r\nback\\slash "quoted" (paren), comma', 1.5, 'NaN', '-0',
   '2024-02-29 23:59:59.123456+05:30', '2024-01-01 00:00:00', '2024-02-29',
   '1 year 2 mons 3 days 04:05:06.789', '\x00ff0000', '{"b": [1, 2.50, null], "a": "x\ty"}',
   ARRAY['a', NULL, '', 'with space', 'q"uote', E'back\\slash'], '{{1,2},{3,4}}', 'happy', 7,
   12.34, true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', ROW(1, 'p q'), 'Me@Example.COM',
   '10.0.0.1/8', '12:00:00+02', '[1.5,2.25)'),
  (2, '', 0, 'Infinity', 'NaN', 'infinity', '-infinity', '4713-01-01 BC', '-1 day -00:00:01',
   '\x', '[]', '{}', NULL, 'sad', 1, -0.5, false, NULL, ROW(NULL, ''), '', NULL, NULL, 'empty'),
  (3, NULL, -123456789012.0001, '-Infinity', 3.14159, '1999-12-31 23:59:59+00', NULL,
   '294276-12-31', '-100000 years', NULL, 'null', ARRAY[]::text[], '{NULL}', NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, '::1', '23:59:59.999999-14', '(,)'),
  (4, '-0', 1e-4, '-0', 1e30, '2000-01-01 00:00:00+14', '2000-01-01', '2000-01-01', '0',
   '\x5c00', '{"nested": {"deep": [true, false]}}', '{"NULL","null",NULL}', '{0}', 'ok', 2,
   1e6, true, '00000000-0000-0000-0000-000000000000', ROW(-1, 'NULL'), 'x', '0.0.0.0',
   '00:00:00+00', '[-1e300,1e300]');
INSERT INTO shop.items (id, label, amount, ratio, at, doc, mood, qty, flag)
  SELECT g, 'item ' || g, g * 1.25, g / 7.0::float8,
         '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute 1.5 seconds',
         jsonb_build_object('g', g, 'half', g / 2.0), (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::shop.mood,
         1 + g % 5, g % 2 = 0
    FROM generate_series(10, 2000) g;
CREATE INDEX items_label_idx ON shop.items (label);
ALTER TABLE shop.items ENABLE ROW LEVEL SECURITY;
CREATE POLICY items_flagged ON shop.items FOR SELECT USING (flag);

CREATE TABLE shop.events (id bigint NOT NULL, happened date NOT NULL, note text)
  PARTITION BY RANGE (happened);
CREATE TABLE shop.events_2023 PARTITION OF shop.events
  FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE shop.events_2024 PARTITION OF shop.events
  FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_happened_idx ON shop.events (happened);
CREATE FUNCTION shop.fill_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.note := coalesce(NEW.note, 'none');
  RETURN NEW;
END $$;
CREATE TRIGGER events_fill_note BEFORE INSERT ON shop.events
  FOR EACH ROW EXECUTE FUNCTION shop.fill_note();
INSERT INTO shop.events SELECT g, DATE '2023-06-01' + g, NULL FROM generate_series(1, 400) g;

CREATE TABLE shop.animals (id integer PRIMARY KEY, name text);
CREATE TABLE shop.dogs (breed text) INHERITS (shop.animals);
INSERT INTO shop.animals VALUES (1, 'cat'), (2, 'cow');
INSERT INTO shop.dogs VALUES (3, 'rex', 'collie'), (4, 'fido', NULL);

CREATE UNLOGGED TABLE shop.cache (k text PRIMARY KEY, v jsonb);
INSERT INTO shop.cache SELECT 'k' || g, to_jsonb(g) FROM generate_series(1, 50) g;

CREATE MATERIALIZED VIEW shop.mood_counts AS
  SELECT mood, count(*) AS n FROM shop.items GROUP BY mood;
CREATE MATERIALIZED VIEW shop.never_filled AS SELECT 1 AS x WITH NO DATA;
CREATE VIEW shop.cheap_items AS SELECT id, label FROM shop.items WHERE amount < 10;

CREATE SEQUENCE shop.ticket_seq;
SELECT nextval('shop.ticket_seq');
SELECT nextval('shop.ticket_seq');
CREATE SEQUENCE shop.spare_seq;

CREATE TABLE public.notes (
  id bigserial PRIMARY KEY,
  body text NOT NULL CHECK (body <> ''),
  item_id integer REFERENCES shop.items);
INSERT INTO public.notes (body, item_id) VALUES ('first', 1), ('second', 2);
CREATE TABLE shop.orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  item_id integer NOT NULL REFERENCES shop.items,
  qty integer);
INSERT INTO shop.orders (item_id, qty) SELECT 10 + g % 100, g FROM generate_series(1, 300) g;
CREATE TABLE public.empty_table (id integer);
)sql";

const TableVerification* FindTable(const DatabaseVerification& v, const std::string& schema,
                                   const std::string& name) {
  for (const auto& t : v.tables) {
    if (t.schema == schema && t.name == name) return &t;
  }
  return nullptr;
}

const SequenceVerification* FindSequence(const DatabaseVerification& v, const std::string& name) {
  for (const auto& s : v.sequences) {
    if (s.schema + "." + s.name == name) return &s;
  }
  return nullptr;
}

const SchemaVerification* FindKind(const DatabaseVerification& v, const std::string& kind) {
  for (const auto& k : v.schema) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string Show(const DatabaseVerification& v) { return RenderVerifyText({v}, true); }

Result<DatabaseVerification> Verify(const PgCluster& source, const PgCluster& target,
                                    VerifyOptions options = {}) {
  Result<ConnInfo> s = ConnInfo::Parse(source.ConnString("app"));
  Result<ConnInfo> t = ConnInfo::Parse(target.ConnString("app"));
  if (!s.ok()) return s.status();
  if (!t.ok()) return t.status();
  options.connect_timeout = std::chrono::seconds(5);
  return VerifyDatabase(*s, *t, options);
}

// Every source major 15 with every target major from 15 up that is installed.
class VerifyPairTest : public testing::VersionPairTest {};

TEST_P(VerifyPairTest, SameDataMatches) {
  for (const PgCluster* c : {source_.get(), target_.get()}) {
    auto built = c->Sql(kAppDatabase);
    ASSERT_TRUE(built.ok()) << "on " << c->major() << ": " << built.status().ToString();
  }
  // Output settings that would change every row's text, were they not
  // overridden by the verifier: the user's own (settings of the database
  // would be a difference of the database).
  auto odd = target_->Sql(
      "ALTER ROLE CURRENT_USER SET TimeZone = 'Asia/Kolkata';"
      "ALTER ROLE CURRENT_USER SET DateStyle = 'SQL, DMY';"
      "ALTER ROLE CURRENT_USER SET IntervalStyle = 'sql_standard';"
      "ALTER ROLE CURRENT_USER SET extra_float_digits = 0;"
      "ALTER ROLE CURRENT_USER SET bytea_output = 'escape'");
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();

  for (int jobs : {1, 4}) {
    SCOPED_TRACE("jobs = " + std::to_string(jobs));
    VerifyOptions options;
    options.jobs = jobs;
    Result<DatabaseVerification> v = Verify(*source_, *target_, options);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->Mismatches(), 0) << Show(*v);
    EXPECT_TRUE(v->ok());
    EXPECT_EQ(v->source_database, "app");
    EXPECT_EQ(v->target_database, "app");

    // Leaves of the partitioned table, not the parent; the inheritance
    // parent without its children; unlogged tables; populated views only.
    EXPECT_EQ(FindTable(*v, "shop", "events"), nullptr) << Show(*v);
    ASSERT_NE(FindTable(*v, "shop", "events_2023"), nullptr) << Show(*v);
    EXPECT_EQ(FindTable(*v, "shop", "events_2023")->source_rows, 213);
    EXPECT_EQ(FindTable(*v, "shop", "events_2024")->source_rows, 187);
    EXPECT_EQ(FindTable(*v, "shop", "animals")->source_rows, 2);
    EXPECT_EQ(FindTable(*v, "shop", "dogs")->source_rows, 2);
    EXPECT_EQ(FindTable(*v, "shop", "cache")->target_rows, 50);
    ASSERT_NE(FindTable(*v, "shop", "mood_counts"), nullptr);
    EXPECT_EQ(FindTable(*v, "shop", "never_filled"), nullptr);
    const TableVerification* items = FindTable(*v, "shop", "items");
    ASSERT_NE(items, nullptr);
    EXPECT_EQ(items->source_rows, 1995);
    EXPECT_EQ(items->target_rows, 1995);
    EXPECT_FALSE(items->source_checksum.empty());
    EXPECT_NE(items->source_checksum, "0");
    EXPECT_EQ(items->source_checksum, items->target_checksum);
    const TableVerification* empty = FindTable(*v, "public", "empty_table");
    ASSERT_NE(empty, nullptr);
    EXPECT_EQ(empty->source_rows, 0);
    EXPECT_EQ(empty->source_checksum, "0");
    EXPECT_EQ(v->tables.size(), 10u) << Show(*v);

    ASSERT_NE(FindSequence(*v, "shop.ticket_seq"), nullptr) << Show(*v);
    EXPECT_EQ(FindSequence(*v, "shop.ticket_seq")->source_last_value, 2);
    ASSERT_NE(FindSequence(*v, "shop.spare_seq"), nullptr);
    EXPECT_EQ(FindSequence(*v, "shop.spare_seq")->source_last_value, std::nullopt);
    EXPECT_EQ(FindSequence(*v, "shop.spare_seq")->target_last_value, std::nullopt);
    EXPECT_EQ(FindSequence(*v, "public.notes_id_seq")->target_last_value, 2);
    EXPECT_EQ(FindSequence(*v, "shop.orders_id_seq")->target_last_value, 300);

    const SchemaVerification* functions = FindKind(*v, "function");
    ASSERT_NE(functions, nullptr);
    EXPECT_EQ(functions->source_count, 1) << "not citext's, nor the range type's constructors";
    const SchemaVerification* triggers = FindKind(*v, "trigger");
    ASSERT_NE(triggers, nullptr);
    EXPECT_EQ(triggers->source_count, 1) << "the partitions' clones are not counted";
    EXPECT_EQ(FindKind(*v, "policy")->source_count, 1);
    EXPECT_EQ(FindKind(*v, "view")->source_count, 1);
    EXPECT_EQ(FindKind(*v, "materialized view")->source_count, 2);
    EXPECT_EQ(FindKind(*v, "table")->source_count, 10) << "partitioned parent counted here";
    EXPECT_EQ(FindKind(*v, "extension")->source_count, 1);
    EXPECT_EQ(FindKind(*v, "type")->source_count, 4) << "mood, positive, span, pair";
    EXPECT_GE(FindKind(*v, "index")->source_count, 8);
    EXPECT_GE(FindKind(*v, "constraint")->source_count, 8);
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, VerifyPairTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

// Two 15 servers with the same `app` database; each test changes the target.
class VerifyTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartServers());
    for (const PgCluster* c : {source_.get(), target_.get()}) {
      auto built = c->Sql(kAppDatabase);
      ASSERT_TRUE(built.ok()) << built.status().ToString();
    }
  }

  void OnTarget(const std::string& sql) {
    auto done = target_->Sql(sql, "app");
    ASSERT_TRUE(done.ok()) << done.status().ToString();
  }
};

TEST_F(VerifyTest, ChangedValueIsAChecksumMismatch) {
  ASSERT_NO_FATAL_FAILURE(OnTarget("UPDATE shop.items SET label = 'changed' WHERE id = 1"));
  Result<DatabaseVerification> v = Verify(*source_, *target_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Mismatches(), 1) << Show(*v);
  const TableVerification* items = FindTable(*v, "shop", "items");
  ASSERT_NE(items, nullptr);
  EXPECT_FALSE(items->match());
  EXPECT_TRUE(items->error.empty()) << items->error;
  EXPECT_EQ(items->source_rows, items->target_rows);
  EXPECT_NE(items->source_checksum, items->target_checksum);
  std::string text = RenderVerifyText({*v}, false);
  EXPECT_NE(text.find("shop.items"), std::string::npos) << text;
  EXPECT_NE(text.find("checksum differs"), std::string::npos) << text;
  EXPECT_NE(text.find("MISMATCH"), std::string::npos) << text;
}

TEST_F(VerifyTest, DeletedRowIsACountMismatch) {
  ASSERT_NO_FATAL_FAILURE(OnTarget("DELETE FROM shop.events WHERE id = 5"));
  Result<DatabaseVerification> v = Verify(*source_, *target_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Mismatches(), 1) << Show(*v);
  const TableVerification* events = FindTable(*v, "shop", "events_2023");
  ASSERT_NE(events, nullptr);
  EXPECT_EQ(events->source_rows, 213);
  EXPECT_EQ(events->target_rows, 212);
  EXPECT_TRUE(FindTable(*v, "shop", "events_2024")->match());
}

TEST_F(VerifyTest, DroppedIndexIsMissingOnTarget) {
  ASSERT_NO_FATAL_FAILURE(OnTarget("DROP INDEX shop.items_label_idx"));
  Result<DatabaseVerification> v = Verify(*source_, *target_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Mismatches(), 1) << Show(*v);
  const SchemaVerification* indexes = FindKind(*v, "index");
  ASSERT_NE(indexes, nullptr);
  EXPECT_EQ(indexes->missing_on_target, std::vector<std::string>{"shop.items_label_idx"});
  EXPECT_TRUE(indexes->extra_on_target.empty());
  EXPECT_EQ(indexes->source_count, indexes->target_count + 1);
}

TEST_F(VerifyTest, AdvancedSequenceDiffers) {
  ASSERT_NO_FATAL_FAILURE(OnTarget("SELECT nextval('shop.ticket_seq')"));
  ASSERT_NO_FATAL_FAILURE(OnTarget("SELECT setval('shop.spare_seq', 1, false)"));
  Result<DatabaseVerification> v = Verify(*source_, *target_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Mismatches(), 1) << "a reset, never called sequence still matches\n" << Show(*v);
  const SequenceVerification* ticket = FindSequence(*v, "shop.ticket_seq");
  ASSERT_NE(ticket, nullptr);
  EXPECT_FALSE(ticket->match());
  EXPECT_EQ(ticket->source_last_value, 2);
  EXPECT_EQ(ticket->target_last_value, 3);
}

TEST_F(VerifyTest, TableMissingOnTarget) {
  ASSERT_NO_FATAL_FAILURE(OnTarget("DROP TABLE shop.cache"));
  Result<DatabaseVerification> v = Verify(*source_, *target_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const TableVerification* cache = FindTable(*v, "shop", "cache");
  ASSERT_NE(cache, nullptr) << Show(*v);
  EXPECT_FALSE(cache->match());
  EXPECT_EQ(cache->error, "missing on the target");
  EXPECT_EQ(cache->source_rows, 50);
  EXPECT_EQ(cache->target_rows, -1);
  EXPECT_TRUE(Contains(FindKind(*v, "table")->missing_on_target, "shop.cache"));
  EXPECT_TRUE(Contains(FindKind(*v, "index")->missing_on_target, "shop.cache_pkey"));
  EXPECT_TRUE(Contains(FindKind(*v, "constraint")->missing_on_target, "shop.cache.cache_pkey (p)"))
      << Show(*v);
  EXPECT_EQ(v->Mismatches(), 4) << "the table, and the table, index and constraint kinds\n"
                                << Show(*v);
}

TEST_F(VerifyTest, UnpopulatedMaterializedViewOnTarget) {
  ASSERT_NO_FATAL_FAILURE(OnTarget("REFRESH MATERIALIZED VIEW shop.mood_counts WITH NO DATA"));
  Result<DatabaseVerification> v = Verify(*source_, *target_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const TableVerification* counts = FindTable(*v, "shop", "mood_counts");
  ASSERT_NE(counts, nullptr);
  EXPECT_EQ(counts->error, "not populated on the target");
  EXPECT_EQ(counts->source_rows, 4);
  EXPECT_EQ(v->Mismatches(), 1) << Show(*v);
}

TEST_F(VerifyTest, SequenceMissingOnTarget) {
  ASSERT_NO_FATAL_FAILURE(OnTarget("DROP SEQUENCE shop.spare_seq"));
  Result<DatabaseVerification> v = Verify(*source_, *target_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const SequenceVerification* spare = FindSequence(*v, "shop.spare_seq");
  ASSERT_NE(spare, nullptr);
  EXPECT_EQ(spare->error, "missing on the target");
  EXPECT_FALSE(spare->match());
  EXPECT_EQ(FindKind(*v, "sequence")->missing_on_target,
            std::vector<std::string>{"shop.spare_seq"});
  EXPECT_EQ(v->Mismatches(), 2) << Show(*v);
}

TEST_F(VerifyTest, ExtraObjectsOnTargetAndExcludedSchemas) {
  ASSERT_NO_FATAL_FAILURE(OnTarget(
      "CREATE SCHEMA provider_tools; CREATE TABLE provider_tools.heartbeat (at timestamptz);"
      "INSERT INTO provider_tools.heartbeat VALUES (now());"
      "CREATE FUNCTION public.extra(a integer, b text) RETURNS integer LANGUAGE sql AS 'SELECT "
      "a'"));
  Result<DatabaseVerification> v = Verify(*source_, *target_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(FindKind(*v, "schema")->extra_on_target, std::vector<std::string>{"provider_tools"});
  EXPECT_EQ(FindKind(*v, "table")->extra_on_target,
            std::vector<std::string>{"provider_tools.heartbeat"});
  EXPECT_EQ(FindKind(*v, "function")->extra_on_target,
            std::vector<std::string>{"public.extra(a integer, b text)"});
  EXPECT_EQ(v->Mismatches(), 3) << Show(*v);

  VerifyOptions options;
  options.filter.exclude_schemas = {"provider_*", "public"};
  v = Verify(*source_, *target_, options);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Mismatches(), 0) << Show(*v);
  EXPECT_EQ(FindTable(*v, "public", "notes"), nullptr);
  EXPECT_EQ(FindSequence(*v, "public.notes_id_seq"), nullptr);
}

TEST_F(VerifyTest, UnreadableTablesAreNamedNotMiscounted) {
  // A user who may read everything but shop.dogs and the sequence of
  // shop.orders, and who is subject to the row level security of shop.items.
  ASSERT_NO_FATAL_FAILURE(OnTarget(
      "CREATE ROLE reader LOGIN; GRANT USAGE ON SCHEMA shop TO reader;"
      "GRANT SELECT ON ALL TABLES IN SCHEMA shop, public TO reader;"
      "GRANT SELECT ON ALL SEQUENCES IN SCHEMA shop, public TO reader;"
      "REVOKE SELECT ON shop.dogs FROM reader; REVOKE SELECT ON shop.orders_id_seq FROM reader"));
  Result<ConnInfo> s = ConnInfo::Parse(source_->ConnString("app"));
  Result<ConnInfo> t = ConnInfo::Parse(target_->ConnString("app", "reader"));
  ASSERT_TRUE(s.ok() && t.ok());
  VerifyOptions options;
  options.jobs = 2;
  Result<DatabaseVerification> v = VerifyDatabase(*s, *t, options);
  ASSERT_TRUE(v.ok()) << v.status().ToString();

  const TableVerification* items = FindTable(*v, "shop", "items");
  ASSERT_NE(items, nullptr);
  EXPECT_NE(items->error.find("row-level security"), std::string::npos) << Show(*v);
  EXPECT_EQ(items->target_rows, -1);
  const TableVerification* dogs = FindTable(*v, "shop", "dogs");
  ASSERT_NE(dogs, nullptr);
  EXPECT_NE(dogs->error.find("target: permission denied"), std::string::npos) << Show(*v);
  EXPECT_EQ(dogs->source_rows, 2);
  const SequenceVerification* orders_seq = FindSequence(*v, "shop.orders_id_seq");
  ASSERT_NE(orders_seq, nullptr);
  EXPECT_NE(orders_seq->error.find("target: permission denied"), std::string::npos);
  EXPECT_EQ(v->Mismatches(), 3) << "the rest is read after each refusal\n" << Show(*v);
  EXPECT_TRUE(FindTable(*v, "shop", "animals")->match());
}

TEST_F(VerifyTest, ReadsTheSourceAtAnExportedSnapshot) {
  Result<ConnInfo> info = ConnInfo::Parse(source_->ConnString("app"));
  ASSERT_TRUE(info.ok());
  ConnectOptions connect;
  connect.total_timeout = std::chrono::seconds(5);
  auto holder = Connection::Connect(*info, connect);
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  ASSERT_TRUE((*holder)->Run("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());
  auto exported = (*holder)->Exec("SELECT pg_export_snapshot()");
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  std::string snapshot = exported->GetString(0, 0);

  auto inserted = source_->Sql(
      "INSERT INTO shop.animals VALUES (10, 'new'); UPDATE shop.items SET label = 'later' "
      "WHERE id = 2; DELETE FROM shop.cache WHERE k = 'k1'",
      "app");
  ASSERT_TRUE(inserted.ok()) << inserted.status().ToString();

  for (int jobs : {1, 3}) {
    SCOPED_TRACE("jobs = " + std::to_string(jobs));
    VerifyOptions options;
    options.jobs = jobs;
    options.source_snapshot = snapshot;
    Result<DatabaseVerification> at_snapshot = Verify(*source_, *target_, options);
    ASSERT_TRUE(at_snapshot.ok()) << at_snapshot.status().ToString();
    EXPECT_EQ(at_snapshot->Mismatches(), 0) << Show(*at_snapshot);
  }

  Result<DatabaseVerification> now = Verify(*source_, *target_);
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_EQ(now->Mismatches(), 3) << Show(*now);
  EXPECT_EQ(FindTable(*now, "shop", "animals")->source_rows, 3);
  EXPECT_FALSE(FindTable(*now, "shop", "items")->match());
  EXPECT_FALSE(FindTable(*now, "shop", "cache")->match());

  VerifyOptions bad;
  bad.source_snapshot = "00000003-0000001B-1";
  Result<DatabaseVerification> unknown = Verify(*source_, *target_, bad);
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("snapshot"), std::string::npos)
      << unknown.status().ToString();
}

TEST_F(VerifyTest, CancellationEndsAWaitingVerification) {
  // A lock that every read of the table waits for.
  Result<ConnInfo> info = ConnInfo::Parse(source_->ConnString("app"));
  ASSERT_TRUE(info.ok());
  auto locker = Connection::Connect(*info, {});
  ASSERT_TRUE(locker.ok()) << locker.status().ToString();
  ASSERT_TRUE((*locker)->Run("BEGIN; LOCK TABLE shop.cache IN ACCESS EXCLUSIVE MODE").ok());

  CancelToken cancel;
  VerifyOptions options;
  options.cancel = &cancel;
  std::thread canceller([&cancel] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    cancel.Cancel();
  });
  auto started = std::chrono::steady_clock::now();
  Result<DatabaseVerification> v = Verify(*source_, *target_, options);
  auto took = std::chrono::steady_clock::now() - started;
  canceller.join();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kCancelled) << v.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_TRUE(Verify(*source_, *target_, options).status().code() == StatusCode::kCancelled);
}

}  // namespace
}  // namespace pgcourier
