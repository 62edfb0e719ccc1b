#include "migrate/resume_plan.h"

#include "copy/slice_plan.h"

namespace pgcourier {

Result<std::vector<TablePlan>> PlanTables(Connection& at_snapshot, const CopyCatalog& catalog,
                                          int64_t split_bytes, int jobs) {
  const int64_t slice = SliceBytes(split_bytes, catalog.total_bytes, jobs);
  std::vector<TablePlan> plans;
  plans.reserve(catalog.tables.size());
  for (const auto& table : catalog.tables) {
    TablePlan plan;
    if (table.through_root()) {
      // One part per source partition: rows of one may land in any target
      // partition, so parts add rows and never empty anything.
      for (const auto& leaf : table.partitions) {
        Slice part;
        part.kind = Slice::Kind::kPartition;
        part.partition = leaf.QualifiedName();
        plan.slices.push_back(std::move(part));
      }
      plan.pending = plan.parts();
      plans.push_back(std::move(plan));
      continue;
    }
    Result<std::vector<Slice>> slices = PlanTableSlices(at_snapshot, table, slice, jobs);
    if (!slices.ok()) {
      return slices.status().WithContext("planning the slices of " + table.Display());
    }
    plan.slices = std::move(*slices);
    plan.pending = plan.parts();
    plans.push_back(std::move(plan));
  }
  return plans;
}

Result<ResumePlan> ReconcileWithMarks(Connection& target, const CopyCatalog& catalog,
                                      std::vector<TablePlan>& plans) {
  ResumePlan out;
  Result<std::map<std::string, ProgressMark>> marks = ReadProgressMarks(target);
  if (!marks.ok()) return marks.status();
  out.marks = std::move(*marks);
  if (out.marks.empty()) return out;
  std::map<std::string, std::vector<const ProgressMark*>> copies_by_table;
  for (const auto& [step, mark] : out.marks) {
    if (step.rfind("copy ", 0) == 0) copies_by_table[mark.object].push_back(&mark);
  }
  for (size_t t = 0; t < catalog.tables.size(); ++t) {
    const TableToCopy& table = catalog.tables[t];
    TablePlan& plan = plans[t];
    for (size_t i = 0; i < table.indexes.size(); ++i) {
      if (out.marks.count(IndexStepName(table.indexes[i])) != 0) plan.indexes_done.insert(i);
    }
    auto found = copies_by_table.find(table.QualifiedName());
    if (found == copies_by_table.end()) continue;
    const auto& copies = found->second;
    if (copies.size() == static_cast<size_t>(copies.front()->parts)) {
      plan.earlier = true;
      out.any_earlier = true;
      plan.slices.clear();
      plan.pending = 0;
      continue;
    }
    PGC_RETURN_IF_ERROR(ResetTableCopy(target, table.QualifiedName(), table.through_root()));
    out.recopied.push_back(table.Display());
  }
  return out;
}

}  // namespace pgcourier
