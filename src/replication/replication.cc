#include "replication/replication.h"

#include <fmt/format.h>

#include <algorithm>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "pg/quote.h"
#include "pg/transaction.h"
#include "util/redact.h"

namespace pgcourier {
namespace {

constexpr const char* kExtras = "aiven_extras";

// A text[] literal of `values`, each element quoted (names may hold any
// character).
std::string TextArrayLiteral(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

// Makes aiven_extras usable in the connected database: already there, or
// installed now (recorded first). `refused` is the error of the direct way,
// returned with a hint when the server does not offer the extension.
Status UseAivenExtras(Connection& conn, const RecordChangeFn& record_change, const Status& refused,
                      const std::string& hint) {
  Result<QueryResult> installed =
      conn.ExecParams("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = $1", {kExtras});
  if (!installed.ok()) return installed.status();
  if (installed->rows() > 0) return Status::Ok();
  Result<QueryResult> available = conn.ExecParams(
      "SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = $1", {kExtras});
  if (!available.ok()) return available.status();
  if (available->rows() == 0) return refused.WithHint(hint);
  PGC_RETURN_IF_ERROR(
      record_change("extension aiven_extras", "DROP EXTENSION IF EXISTS aiven_extras"));
  return conn.Run("CREATE EXTENSION aiven_extras")
      .WithContext("installing aiven_extras (used for what the user may not do directly)");
}

// True when the subscription exists and the current user may not alter it
// directly (made through aiven_extras, owned by its superuser).
Result<bool> OwnedByExtras(Connection& target, const std::string& subscription) {
  Result<QueryResult> owner = target.ExecParams(
      "SELECT NOT pg_catalog.pg_has_role(s.subowner, 'USAGE') FROM pg_catalog.pg_subscription s "
      "WHERE s.subname = $1",
      {subscription});
  if (!owner.ok()) return owner.status();
  return owner->rows() > 0 && owner->GetBool(0, 0);
}

// Ends the walsender that streams `slot`, if any, and waits until the slot is
// free (a disabled subscription's walsender may take a moment to go).
Status FreeSlot(Connection& source, const std::string& slot) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    Result<QueryResult> active = source.ExecParams(
        "SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", {slot});
    if (!active.ok()) return active.status();
    if (active->rows() == 0 || active->IsNull(0, 0)) return Status::Ok();
    (void)source.ExecParams("SELECT pg_catalog.pg_terminate_backend($1::int)",
                            {active->GetString(0, 0)});
    SleepFor(std::chrono::milliseconds(100), nullptr);
  }
  return Status(StatusCode::kTimeout, "the replication slot " + slot + " stays in use",
                "end the session that uses it (pg_replication_slots.active_pid) and run "
                "pgcourier cleanup again");
}

// CREATE PUBLICATION `name` of `tables` (quoted, qualified), `with` its
// options (or none).
std::string PublicationWithOptions(const std::string& name, const std::vector<std::string>& tables,
                                   const std::string& with) {
  std::string publication = "CREATE PUBLICATION " + QuoteIdent(name);
  if (!tables.empty()) {
    publication += " FOR TABLE ";
    for (size_t i = 0; i < tables.size(); ++i) {
      if (i > 0) publication += ", ";
      publication += "ONLY " + tables[i];
    }
  }
  if (!with.empty()) publication += " WITH (" + with + ")";
  return publication;
}

// Drops the run's publications on `conn` (of the `side` named) where they
// exist, adding each one dropped to `removed`.
Status DropPublications(Connection& conn, const ReplicationNames& names, const std::string& side,
                        std::vector<std::string>& removed) {
  for (const std::string* name : {&names.publication, &names.append_publication}) {
    if (name->empty()) continue;
    Result<QueryResult> pub =
        conn.ExecParams("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1", {*name});
    if (!pub.ok()) return pub.status().WithContext("looking for a publication on the " + side);
    if (pub->rows() == 0) continue;
    PGC_RETURN_IF_ERROR(conn.Run("DROP PUBLICATION " + QuoteIdent(*name))
                            .WithContext("dropping the publication " + *name + " on the " + side));
    removed.push_back("publication " + *name + " (" + side + ")");
  }
  return Status::Ok();
}

}  // namespace

ReplicationNames NamesFor(const std::string& run_id, int index) {
  const std::string base = "pgcourier_" + run_id;
  return {base, fmt::format("{}_{}", base, index), base, base + "_append"};
}

ReplicationNames RollbackNamesFor(const std::string& run_id, int index) {
  const std::string base = "pgcourier_" + run_id;
  // No append-only publication: the way back publishes only tables with a
  // replica identity; cutover copies the others back inside its window.
  return {base + "_back", fmt::format("{}_{}_back", base, index), base + "_back", ""};
}

std::string PublicationStatement(const std::string& name, const std::vector<std::string>& tables,
                                 bool via_partition_root) {
  return PublicationWithOptions(name, tables,
                                via_partition_root ? "publish_via_partition_root = true" : "");
}

Status CreatePublicationAndSlot(Connection& conn, const ReplicationNames& names,
                                const std::vector<std::string>& tables, bool via_partition_root,
                                Deadline deadline) {
  const std::string publication =
      PublicationStatement(names.publication, tables, via_partition_root);
  PGC_RETURN_IF_ERROR(
      conn.Run(publication)
          .WithContext("creating the publication " + names.publication + " on the target"));
  Status slot = conn.ExecParams(
                        "SELECT pg_catalog.pg_create_logical_replication_slot($1, "
                        "'pgoutput')",
                        {names.slot}, deadline)
                    .status();
  if (slot.ok()) return Status::Ok();
  if (slot.code() == StatusCode::kTimeout) {
    return slot.WithHint(
        "the slot waits for the transactions open on the target to end; end them and run "
        "cutover again");
  }
  return slot.WithContext("creating the replication slot " + names.slot + " on the target");
}

bool IsRunObjectName(const std::string& name) {
  static const std::regex kRunObject("^pgcourier_[0-9a-f]+(_append)?$");
  return std::regex_match(name, kRunObject);
}

Result<std::string> StartReplication(const ConnInfo& source_db, Connection& holder,
                                     const ReplicationNames& names,
                                     const std::vector<std::string>& tables,
                                     const std::vector<std::string>& append_only,
                                     const ConnectOptions& connect,
                                     const RecordChangeFn& record_change, const SlotWait& slot_wait,
                                     bool via_partition_root) {
  // The publications first: the slot decodes with the catalog as of its
  // starting point, which must already hold them.
  const std::string via_root = via_partition_root ? "publish_via_partition_root = true" : "";
  Status published = holder.Run(PublicationWithOptions(names.publication, tables, via_root));
  const bool direct = published.ok();
  if (!published.ok() && published.sqlstate() == "42501" && via_partition_root) {
    return Status(StatusCode::kFailedPrecondition,
                  "publishing a partition tree through its root needs "
                  "publish_via_partition_root, which aiven_extras cannot set",
                  "connect to the source as the tables' owner or a superuser, or use "
                  "--method copy");
  }
  if (!published.ok() && published.sqlstate() == "42501") {
    PGC_RETURN_IF_ERROR(UseAivenExtras(
        holder, record_change, published,
        "connect to the source as the tables' owner or a superuser, or use --method copy"));
    // aiven_extras publishes each table with its inheritance children: a
    // child replication cannot carry would then refuse UPDATE and DELETE on
    // the source.
    const std::string listed = TextArrayLiteral(tables);
    Result<QueryResult> children = holder.ExecParams(
        "SELECT i.inhrelid::regclass::text FROM pg_catalog.pg_inherits i "
        "WHERE i.inhparent IN (SELECT pg_catalog.unnest($1::text[])::regclass) "
        "AND i.inhrelid NOT IN (SELECT pg_catalog.unnest($1::text[])::regclass)",
        {listed});
    if (!children.ok()) return children.status();
    if (children->rows() > 0) {
      return Status(StatusCode::kFailedPrecondition,
                    "publishing through aiven_extras would also publish the inheritance child " +
                        children->GetString(0, 0) + ", which has no replica identity",
                    "give it a primary key, connect as the tables' owner, or use --method copy");
    }
    published = holder
                    .ExecParams(
                        "SELECT aiven_extras.pg_create_publication($1, "
                        "'insert,update,delete,truncate', VARIADIC $2::text[])",
                        {names.publication, listed})
                    .status();
  }
  if (!published.ok()) return published.WithContext("creating the publication on the source");
  if (direct && !append_only.empty()) {
    PGC_RETURN_IF_ERROR(
        holder
            .Run(PublicationWithOptions(
                names.append_publication, append_only,
                "publish = 'insert, truncate'" + (via_root.empty() ? "" : ", " + via_root)))
            .WithContext("creating the publication of the tables without replica identity"));
  }

  ConnectOptions replication_connect = connect;
  // No SQL before the slot; it moves no value either.
  replication_connect.secure_search_path = false;
  replication_connect.pin_formats = false;
  Result<std::unique_ptr<Connection>> walsender =
      Connection::Connect(source_db.With("replication", "database"), replication_connect);
  if (!walsender.ok()) return walsender.status().WithContext("opening a replication connection");
  Result<std::string> slot = CreateLogicalSlot(**walsender, holder, names.slot, slot_wait);
  if (!slot.ok()) return slot.status();
  const std::string exported = *slot;
  // The slot's snapshot lives while the replication connection is idle: it
  // is imported on the holder, whose transaction keeps it for the copy. That
  // transaction lasts as long as the holder connection, which the caller
  // owns (see copy/snapshot.h, ExportedSnapshot::Adopt), so no Transaction
  // object of this scope owns it.
  TransactionOptions at_slot;
  at_slot.isolation = IsolationLevel::kRepeatableRead;
  at_slot.read_only = true;
  at_slot.snapshot = exported;
  Result<QueryResult> again =
      holder.Exec(BeginStatement(at_slot) + "; SELECT pg_catalog.pg_export_snapshot()");
  if (!again.ok()) return again.status().WithContext("taking over the slot's snapshot");
  return again->GetString(0, 0);
}

namespace {

// The type of a column (a), its array element type (e) and the extension
// either belongs to (x), joined to pg_attribute a.
constexpr const char* kColumnTypeJoins =
    "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    "LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' "
    "LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass "
    "AND d.objid = coalesce(e.oid, t.oid) AND d.deptype = 'e' "
    "LEFT JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid ";

// The published columns of `names.publication` (and of the append-only
// publication, where the names have one) with their types as the
// source has them, binary meaning send and receive.
Result<std::vector<PublishedColumnType>> PublishedColumnTypes(Connection& source,
                                                              const ReplicationNames& names) {
  Result<QueryResult> types = source.ExecParams(
      std::string("SELECT pt.schemaname::text, pt.tablename::text, a.attname::text, "
                  "pg_catalog.format_type(t.oid, NULL), "
                  "(t.typsend <> 0 AND t.typreceive <> 0 AND coalesce(e.typsend <> 0 "
                  "AND e.typreceive <> 0, true)), x.extname, x.extversion "
                  "FROM pg_catalog.pg_publication_tables pt "
                  "JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname "
                  "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid "
                  "AND c.relname = pt.tablename "
                  "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                  "AND NOT a.attisdropped ") +
          kColumnTypeJoins + "WHERE pt.pubname IN ($1, $2) ORDER BY 1, 2, a.attnum",
      {names.publication, names.append_publication});
  if (!types.ok()) return types.status().WithContext("reading the published column types");
  std::vector<PublishedColumnType> out;
  out.reserve(static_cast<size_t>(types->rows()));
  for (int r = 0; r < types->rows(); ++r) {
    PublishedColumnType column;
    column.schema = types->GetString(r, 0);
    column.table = types->GetString(r, 1);
    column.column = types->GetString(r, 2);
    column.type = types->GetString(r, 3);
    column.binary = types->GetBool(r, 4);
    column.extension = types->GetString(r, 5);
    column.extension_version = types->GetString(r, 6);
    out.push_back(std::move(column));
  }
  return out;
}

// The same columns as the target has them (std::nullopt where it lacks
// one), binary meaning receive.
Result<std::vector<std::optional<PublishedColumnType>>> SameColumnTypes(
    Connection& target, const std::vector<PublishedColumnType>& published) {
  std::vector<std::string> schemas;
  std::vector<std::string> tables;
  std::vector<std::string> columns;
  for (const auto& p : published) {
    schemas.push_back(p.schema);
    tables.push_back(p.table);
    columns.push_back(p.column);
  }
  Result<QueryResult> types = target.ExecParams(
      std::string("SELECT q.i, pg_catalog.format_type(t.oid, NULL), "
                  "(t.typreceive <> 0 AND coalesce(e.typreceive <> 0, true)), x.extname, "
                  "x.extversion "
                  "FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]), "
                  "pg_catalog.unnest($3::text[])) WITH ORDINALITY AS q(s, r, c, i) "
                  "JOIN pg_catalog.pg_namespace n ON n.nspname = q.s "
                  "JOIN pg_catalog.pg_class cl ON cl.relnamespace = n.oid AND cl.relname = q.r "
                  "JOIN pg_catalog.pg_attribute a ON a.attrelid = cl.oid AND a.attname = q.c "
                  "AND a.attnum > 0 AND NOT a.attisdropped ") +
          kColumnTypeJoins,
      {TextArrayLiteral(schemas), TextArrayLiteral(tables), TextArrayLiteral(columns)});
  if (!types.ok()) return types.status().WithContext("reading the target's column types");
  std::vector<std::optional<PublishedColumnType>> out(published.size());
  for (int r = 0; r < types->rows(); ++r) {
    const int64_t i = types->GetInt(r, 0) - 1;
    if (i < 0 || static_cast<size_t>(i) >= out.size()) continue;
    PublishedColumnType column = published[static_cast<size_t>(i)];
    column.type = types->GetString(r, 1);
    column.binary = types->GetBool(r, 2);
    column.extension = types->GetString(r, 3);
    column.extension_version = types->GetString(r, 4);
    out[static_cast<size_t>(i)] = std::move(column);
  }
  return out;
}

}  // namespace

std::string BinaryTransferProblem(const std::vector<PublishedColumnType>& source,
                                  const std::vector<std::optional<PublishedColumnType>>& target) {
  for (size_t i = 0; i < source.size(); ++i) {
    const PublishedColumnType& s = source[i];
    if (!s.binary) return "type " + s.type + " has no binary send/receive on the source";
    if (i >= target.size() || !target[i]) continue;
    const PublishedColumnType& t = *target[i];
    if (t.type != s.type) {
      return fmt::format("column {}.{}.{} is of type {} on the source, {} on the target", s.schema,
                         s.table, s.column, s.type, t.type);
    }
    if (!t.binary) return "type " + s.type + " has no binary receive on the target";
    if (t.extension != s.extension || t.extension_version != s.extension_version) {
      auto of = [](const PublishedColumnType& c) {
        return c.extension.empty() ? std::string("of no extension")
                                   : "of extension " + c.extension + " " + c.extension_version;
      };
      return fmt::format("type {} {} on the source, {} on the target", s.type, of(s), of(t));
    }
  }
  return "";
}

std::string SubscriptionOptions::Text() const {
  return fmt::format("binary = {}{}, streaming = {}{}", binary ? "true" : "false",
                     why.empty() ? "" : " (" + why + ")", streaming.empty() ? "off" : streaming,
                     origin_none ? ", origin = none" : "");
}

Result<SubscriptionOptions> ChooseSubscriptionOptions(Connection& target, Connection& source,
                                                      const ReplicationNames& names) {
  SubscriptionOptions out;
  const int lowest = std::min(source.server_version(), target.server_version());
  if (lowest >= 140000) out.streaming = target.server_version() >= 160000 ? "parallel" : "on";
  if (lowest < 140000) {
    out.why = "a server older than 14";
    return out;
  }
  // Every published column's type on both sides (BinaryTransferProblem).
  Result<std::vector<PublishedColumnType>> published = PublishedColumnTypes(source, names);
  if (!published.ok()) return published.status();
  Result<std::vector<std::optional<PublishedColumnType>>> there =
      SameColumnTypes(target, *published);
  if (!there.ok()) return there.status();
  out.why = BinaryTransferProblem(*published, *there);
  out.binary = out.why.empty();
  return out;
}

Result<SubscriptionOptions> CreateSubscription(Connection& target, Connection& source,
                                               const ConnInfo& given, const ReplicationNames& names,
                                               const RecordChangeFn& record_change,
                                               const SubscriptionOptions& with) {
  SubscriptionOptions used = with;
  // The source as this process reached it, password included (from the
  // URI, PGPASSWORD or .pgpass): the target server connects with it.
  static const std::set<std::string> kKeep = {
      "host",       "hostaddr",    "port",       "user",
      "password",   "dbname",      "sslmode",    "sslcert",
      "sslkey",     "sslrootcert", "sslcrl",     "channel_binding",
      "gssencmode", "sslpassword", "requiressl", "target_session_attrs"};
  Result<std::vector<std::pair<std::string, std::string>>> parameters = source.Parameters();
  if (!parameters.ok()) return parameters.status();
  std::string conninfo;
  // Files name paths on this machine: libpq fills in defaults under this
  // user's home, which the target server could not read. Only those the
  // user named are passed on.
  static const std::set<std::string> kFiles = {"sslcert", "sslkey", "sslrootcert", "sslcrl"};
  for (const auto& [keyword, value] : *parameters) {
    if (kKeep.count(keyword) == 0) continue;
    if (kFiles.count(keyword) != 0 && !given.Has(keyword)) continue;
    if (!conninfo.empty()) conninfo.push_back(' ');
    conninfo += keyword + "=" + QuoteConnValue(value);
  }
  // Asked first rather than tried: a refused statement would land in the
  // server's log, password and all. A superuser keeps it out of the log
  // altogether.
  Result<QueryResult> rights = target.Exec(
      "SELECT r.rolsuper, r.rolsuper OR CASE WHEN "
      "pg_catalog.current_setting('server_version_num')::int >= 160000 THEN "
      "pg_catalog.pg_has_role('pg_create_subscription', 'USAGE') ELSE false END "
      "FROM pg_catalog.pg_roles r WHERE r.rolname = current_user");
  if (!rights.ok()) return rights.status().WithContext("reading the target user's rights");
  const bool superuser = rights->rows() > 0 && rights->GetBool(0, 0);
  const bool may_subscribe = rights->rows() > 0 && rights->GetBool(0, 1);
  Status created =
      Status(StatusCode::kServerError, "permission denied to create subscription", "", "42501");
  std::string publications = QuoteIdent(names.publication);
  if (!names.append_publication.empty()) {
    Result<QueryResult> append = source.ExecParams(
        "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1", {names.append_publication});
    if (!append.ok()) return append.status().WithContext("looking for the append-only publication");
    if (append->rows() > 0) publications += ", " + QuoteIdent(names.append_publication);
  }
  if (may_subscribe) {
    if (superuser) {
      (void)target.Run("SET log_statement = 'none'; SET log_min_error_statement = 'panic'");
    }
    created = target.Run(fmt::format(
        "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, "
        "slot_name = {}, copy_data = false, enabled = true{}{}{})",
        QuoteIdent(names.subscription), QuoteLiteral(conninfo), publications,
        QuoteLiteral(names.slot), with.binary ? ", binary = true" : "",
        with.streaming.empty() ? "" : ", streaming = " + with.streaming,
        with.origin_none ? ", origin = none" : ""));
    if (superuser) (void)target.Run("RESET log_statement; RESET log_min_error_statement");
  }
  if (!created.ok() && created.sqlstate() == "42501") {
    const std::string hint =
        "the target user needs superuser or, on 16+, pg_create_subscription (on Aiven: the "
        "aiven_extras extension)";
    Status extras = UseAivenExtras(target, record_change, created, hint);
    if (!extras.ok()) return extras.WithHint(hint);
    // The connection string travels as a parameter, never in the text; the
    // function takes no options.
    used = SubscriptionOptions();
    used.why = "made through aiven_extras, which takes no options";
    created = target
                  .ExecParams(
                      "SELECT aiven_extras.pg_create_subscription($1, $2, $3, $4, false, "
                      "false)",
                      {names.subscription, conninfo, names.publication, names.slot})
                  .status();
  }
  // The statement holds the password: the error never repeats it (the
  // server's message is passed on with passwords masked).
  if (!created.ok()) {
    return Status(created.code(),
                  "creating the subscription " + names.subscription +
                      " failed: " + MaskPasswords(created.message()),
                  created.sqlstate() == "42501"
                      ? "the target user needs superuser or, on 16+, pg_create_subscription"
                      : "check that the subscribing server can reach the publishing one as "
                        "pgcourier does",
                  created.sqlstate());
  }
  return used;
}

bool ReplicationLag::AllReady() const {
  return std::all_of(tables.begin(), tables.end(), [](const auto& t) { return t.second == "r"; });
}

Result<ReplicationLag> ReadLag(Connection* source, Connection* target,
                               const ReplicationNames& names) {
  ReplicationLag lag;
  if (source != nullptr) {
    Result<QueryResult> slot = source->ExecParams(
        "SELECT pg_catalog.pg_current_wal_lsn()::text, s.confirmed_flush_lsn::text, s.active, "
        "pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), "
        "s.confirmed_flush_lsn)::bigint, "
        "pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint "
        "FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
        {names.slot});
    if (!slot.ok()) return slot.status().WithContext("reading the replication slot");
    if (slot->rows() > 0) {
      lag.slot_exists = true;
      lag.source_lsn = slot->GetString(0, 0);
      lag.confirmed_lsn = slot->GetString(0, 1);
      lag.slot_active = slot->GetBool(0, 2);
      lag.lag_bytes = slot->GetInt(0, 3, -1);
      lag.retained_bytes = slot->GetInt(0, 4, -1);
    }
  }
  if (target != nullptr) {
    Result<QueryResult> sub = target->ExecParams(
        "SELECT coalesce(extract(epoch FROM now() - max(st.last_msg_receipt_time)), -1)::float8 "
        "FROM pg_catalog.pg_subscription s "
        "LEFT JOIN pg_catalog.pg_stat_subscription st ON st.subid = s.oid "
        "WHERE s.subname = $1 GROUP BY s.oid",
        {names.subscription});
    if (!sub.ok()) return sub.status().WithContext("reading the subscription");
    if (sub->rows() > 0) {
      lag.subscription_exists = true;
      lag.lag_seconds = std::stod(sub->GetString(0, 0));
      Result<QueryResult> rels = target->ExecParams(
          "SELECT r.srrelid::regclass::text, r.srsubstate::text FROM "
          "pg_catalog.pg_subscription_rel r "
          "JOIN pg_catalog.pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1 ORDER BY 1",
          {names.subscription});
      if (!rels.ok()) return rels.status().WithContext("reading the subscription's tables");
      for (int r = 0; r < rels->rows(); ++r) {
        lag.tables.emplace_back(rels->GetString(r, 0), rels->GetString(r, 1));
      }
    }
  }
  return lag;
}

Status WaitApplied(Connection& source, const ReplicationNames& names, const std::string& lsn,
                   Deadline deadline, const CancelToken* cancel,
                   const std::function<Status()>& check, std::chrono::milliseconds check_every) {
  auto next_check = std::chrono::steady_clock::now() + check_every;
  for (;;) {
    Result<QueryResult> reached = source.ExecParams(
        "SELECT s.confirmed_flush_lsn >= $2::pg_lsn, s.confirmed_flush_lsn::text "
        "FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
        {names.slot, lsn});
    if (!reached.ok()) return reached.status();
    if (reached->rows() == 0) {
      return Status(StatusCode::kNotFound, "the replication slot " + names.slot + " is gone",
                    "the changes since the bulk copy cannot be applied; move the database again");
    }
    if (reached->GetBool(0, 0)) return Status::Ok();
    if (check && std::chrono::steady_clock::now() >= next_check) {
      PGC_RETURN_IF_ERROR(check());
      next_check = std::chrono::steady_clock::now() + check_every;
    }
    if (deadline.passed()) {
      return Status(StatusCode::kTimeout,
                    fmt::format("the target has applied changes up to {}, not yet up to {}",
                                reached->GetString(0, 1), lsn),
                    "wait and run cutover again, or give it a longer --timeout");
    }
    if (!SleepFor(std::chrono::milliseconds(200), cancel)) {
      return Status(StatusCode::kCancelled, "cancelled while waiting for the target to catch up");
    }
  }
}

Result<std::vector<std::string>> DropReplication(Connection* source, Connection* target,
                                                 const ReplicationNames& names) {
  std::vector<std::string> removed;
  if (target != nullptr) {
    Result<QueryResult> sub = target->ExecParams(
        "SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = $1 AND subdbid = "
        "(SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())",
        {names.subscription});
    if (!sub.ok()) return sub.status().WithContext("looking for the subscription");
    Result<bool> extras = sub->rows() > 0 ? OwnedByExtras(*target, names.subscription) : false;
    if (!extras.ok()) return extras.status().WithContext("looking for the subscription's owner");
    if (*extras) {
      PGC_RETURN_IF_ERROR(target
                              ->ExecParams("SELECT aiven_extras.pg_alter_subscription_disable($1)",
                                           {names.subscription})
                              .status()
                              .WithContext("disabling the subscription through aiven_extras"));
      if (source == nullptr) {
        return Status(StatusCode::kConnectionFailed,
                      "the subscription " + names.subscription +
                          " is disabled; aiven_extras drops it together with its slot, which "
                          "needs the source",
                      "run pgcourier cleanup again when the source is reachable");
      }
      PGC_RETURN_IF_ERROR(FreeSlot(*source, names.slot));
      PGC_RETURN_IF_ERROR(
          target->ExecParams("SELECT aiven_extras.pg_drop_subscription($1)", {names.subscription})
              .status()
              .WithContext("dropping the subscription through aiven_extras"));
      removed.push_back("subscription " + names.subscription + " (target, through aiven_extras)");
      // aiven_extras drops the slot with it.
      Result<QueryResult> slot = source->ExecParams(
          "SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", {names.slot});
      if (slot.ok() && slot->rows() == 0) {
        removed.push_back("replication slot " + names.slot + " (source, through aiven_extras)");
      }
    } else if (sub->rows() > 0) {
      // Detached from its slot first: dropping then needs no connection to
      // the source (the slot is dropped there below).
      const std::string name = QuoteIdent(names.subscription);
      PGC_RETURN_IF_ERROR(target->Run("ALTER SUBSCRIPTION " + name + " DISABLE")
                              .WithContext("disabling the subscription"));
      PGC_RETURN_IF_ERROR(target->Run("ALTER SUBSCRIPTION " + name + " SET (slot_name = NONE)")
                              .WithContext("detaching the subscription from its slot"));
      PGC_RETURN_IF_ERROR(
          target->Run("DROP SUBSCRIPTION " + name).WithContext("dropping the subscription"));
      removed.push_back("subscription " + names.subscription + " (target)");
    }
    PGC_RETURN_IF_ERROR(DropPublications(*target, names, "target", removed));
  }
  if (source != nullptr) {
    // A slot still in use by a walsender (the subscription's, until it
    // notices) cannot be dropped: end that walsender, then drop.
    for (int attempt = 0;; ++attempt) {
      Result<QueryResult> slot = source->ExecParams(
          "SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
          {names.slot});
      if (!slot.ok()) return slot.status().WithContext("looking for the replication slot");
      if (slot->rows() == 0) break;
      if (!slot->IsNull(0, 0)) {
        (void)source->ExecParams("SELECT pg_catalog.pg_terminate_backend($1::int)",
                                 {slot->GetString(0, 0)});
      }
      Result<QueryResult> dropped =
          source->ExecParams("SELECT pg_catalog.pg_drop_replication_slot($1)", {names.slot});
      if (dropped.ok()) {
        removed.push_back("replication slot " + names.slot + " (source)");
        break;
      }
      if (attempt >= 50) return dropped.status().WithContext("dropping the replication slot");
      SleepFor(std::chrono::milliseconds(100), nullptr);
    }
    PGC_RETURN_IF_ERROR(DropPublications(*source, names, "source", removed));
  }
  return removed;
}

std::string WayBackSides(std::string removed) {
  static constexpr std::string_view kSource = "(source)";
  static constexpr std::string_view kTarget = "(target)";
  if (removed.ends_with(kSource)) {
    removed.replace(removed.size() - kSource.size(), kSource.size(), kTarget);
  } else if (removed.ends_with(kTarget)) {
    removed.replace(removed.size() - kTarget.size(), kTarget.size(), kSource);
  }
  return removed;
}

}  // namespace pgcourier
