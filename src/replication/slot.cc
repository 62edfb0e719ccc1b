#include "replication/slot.h"

#include <fmt/format.h>

#include <future>
#include <utility>

#include "pg/quote.h"

namespace pgcourier {
namespace {

// The transactions named: the oldest few.
constexpr int kNamed = 3;
constexpr std::chrono::seconds kReadTimeout{30};

std::string FormatLimit(std::chrono::milliseconds limit) {
  if (limit.count() % 1000 != 0) return fmt::format("{} ms", limit.count());
  return FormatOpenTime(limit.count() / 1000);
}

}  // namespace

std::string DescribeSlotWait(const std::vector<OpenTransaction>& transactions,
                             std::chrono::seconds waited) {
  return fmt::format("waiting {} for the replication slot, which waits for {} to end: {}",
                     FormatOpenTime(waited.count()),
                     transactions.size() == 1 ? "this transaction" : "these transactions",
                     DescribeOpenTransactions(transactions));
}

Result<std::string> CreateLogicalSlot(Connection& walsender, Connection& observer,
                                      const std::string& slot, const SlotWait& wait) {
  using Clock = std::chrono::steady_clock;
  const Deadline deadline =
      wait.limit.count() > 0 ? Deadline::After(wait.limit) : Deadline::Never();
  const std::string sql =
      "CREATE_REPLICATION_SLOT " + QuoteIdent(slot) + " LOGICAL pgoutput EXPORT_SNAPSHOT";
  const auto started = Clock::now();
  // The walsender waits on a thread of its own; this one watches.
  std::future<Result<QueryResult>> creating = std::async(
      std::launch::async, [&walsender, &sql, deadline] { return walsender.Exec(sql, deadline); });
  std::vector<OpenTransaction> waited_for;
  while (creating.wait_for(wait.poll) != std::future_status::ready) {
    Result<std::vector<OpenTransaction>> open = ReadOpenTransactions(
        observer, std::chrono::seconds(0), kNamed, Deadline::After(kReadTimeout));
    if (!open.ok() || open->empty()) continue;
    waited_for = std::move(*open);
    if (wait.on_wait) {
      wait.on_wait(waited_for,
                   std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started));
    }
  }
  Result<QueryResult> created = creating.get();
  if (created.ok()) return created->GetString(0, 2);
  if (created.status().code() != StatusCode::kTimeout) {
    return created.status().WithContext("creating the replication slot " + slot);
  }
  // Who is still there now that it gave up.
  Result<std::vector<OpenTransaction>> open = ReadOpenTransactions(
      observer, std::chrono::seconds(0), kNamed, Deadline::After(kReadTimeout));
  if (open.ok() && !open->empty()) waited_for = std::move(*open);
  if (waited_for.empty()) {
    return Status(StatusCode::kTimeout,
                  fmt::format("creating the replication slot {} did not finish within {} "
                              "(--lock-timeout), and no open transaction on the source explains "
                              "the wait",
                              slot, FormatLimit(wait.limit)),
                  fmt::format("look for sessions holding transactions on the source "
                              "(pg_stat_activity, pg_prepared_xacts), then {}",
                              wait.then));
  }
  return Status(
      StatusCode::kTimeout,
      fmt::format("creating the replication slot {} waited {} (--lock-timeout) for {} open on "
                  "the source to end: {}; the slot was not made",
                  slot, FormatLimit(wait.limit),
                  waited_for.size() == 1 ? "a transaction" : "transactions",
                  DescribeOpenTransactions(waited_for)),
      fmt::format("end {} ({}) or wait for {} to finish, then {}; a logical replication slot is "
                  "made only once every transaction running when it starts has ended",
                  waited_for.size() == 1 ? "it" : "them", EndTransactionsHint(waited_for),
                  waited_for.size() == 1 ? "it" : "them", wait.then));
}

}  // namespace pgcourier
