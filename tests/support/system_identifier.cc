#include "system_identifier.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

namespace pgcourier::testing {
namespace {

namespace fs = std::filesystem;

// pg_control is 8 kB (PG_CONTROL_FILE_SIZE); its data, the CRC last, fits
// the first 512 bytes (PG_CONTROL_MAX_SAFE_SIZE) in every version.
constexpr size_t kControlFileSize = 8192;
constexpr size_t kControlMaxDataSize = 512;
// XLogLongPageHeaderData: the short header (magic, info, timeline, page
// address, remaining length; 24 bytes with padding), then xlp_sysid.
constexpr size_t kWalInfoOffset = 2;
constexpr size_t kWalSysidOffset = 24;
constexpr size_t kWalLongHeaderSize = 40;
constexpr uint16_t kXlpLongHeader = 0x0002;

Result<std::vector<unsigned char>> ReadBinary(const fs::path& path, size_t size) {
  std::ifstream in(path, std::ios::binary);
  std::vector<unsigned char> data(size);
  if (!in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(size))) {
    return Status(StatusCode::kIoError, "reading " + std::to_string(size) + " bytes of " +
                                            path.string() + ": " + std::strerror(errno));
  }
  return data;
}

Status WriteAt(const fs::path& path, size_t offset, const unsigned char* data, size_t size) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(static_cast<std::streamoff>(offset));
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.flush();
  if (!out) return Status(StatusCode::kIoError, "writing " + path.string());
  return Status::Ok();
}

template <typename T>
T Load(const unsigned char* at) {
  T value;
  std::memcpy(&value, at, sizeof value);
  return value;
}

// Where pg_control's CRC sits: the 4-byte-aligned offset whose CRC-32C of
// everything before it is the value stored there.
Result<size_t> ControlCrcOffset(const std::vector<unsigned char>& control) {
  for (size_t offset = sizeof(uint64_t); offset + sizeof(uint32_t) <= kControlMaxDataSize;
       offset += sizeof(uint32_t)) {
    if (Crc32c(control.data(), offset) == Load<uint32_t>(control.data() + offset)) return offset;
  }
  return Status(
      StatusCode::kFailedPrecondition,
      "pg_control: no CRC found in its first " + std::to_string(kControlMaxDataSize) + " bytes");
}

}  // namespace

uint32_t Crc32c(const unsigned char* data, size_t size) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1U) != 0 ? 0x82F63B78U : 0U);
      table[i] = crc;
    }
    return table;
  }();
  uint32_t crc = 0xFFFFFFFFU;
  for (size_t i = 0; i < size; ++i) crc = kTable[(crc ^ data[i]) & 0xFFU] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFU;
}

uint64_t NewSystemIdentifier() {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  std::random_device random;
  return (static_cast<uint64_t>(seconds) << 32) | static_cast<uint32_t>(random());
}

Result<uint64_t> ReadSystemIdentifier(const std::string& data_dir) {
  fs::path path = fs::path(data_dir) / "global" / "pg_control";
  auto control = ReadBinary(path, kControlFileSize);
  if (!control.ok()) return control.status();
  auto crc_offset = ControlCrcOffset(*control);
  if (!crc_offset.ok()) return crc_offset.status().WithContext(path.string());
  return Load<uint64_t>(control->data());
}

Status SetSystemIdentifier(const std::string& data_dir, uint64_t id) {
  fs::path control_path = fs::path(data_dir) / "global" / "pg_control";
  auto control = ReadBinary(control_path, kControlFileSize);
  if (!control.ok()) return control.status();
  auto crc_offset = ControlCrcOffset(*control);
  if (!crc_offset.ok()) return crc_offset.status().WithContext(control_path.string());
  const uint64_t old_id = Load<uint64_t>(control->data());

  // The WAL first: a failure leaves pg_control as it was, and the directory
  // is thrown away anyway.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(data_dir) / "pg_wal", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != 24 || !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) != 0;
        })) {
      continue;  // archive_status/, summaries/, a .history file
    }
    auto header = ReadBinary(entry.path(), kWalLongHeaderSize);
    if (!header.ok()) return header.status();
    if (std::all_of(header->begin(), header->end(), [](unsigned char b) { return b == 0; })) {
      continue;  // preallocated, never written
    }
    const auto info = Load<uint16_t>(header->data() + kWalInfoOffset);
    const auto wal_id = Load<uint64_t>(header->data() + kWalSysidOffset);
    if ((info & kXlpLongHeader) == 0 || wal_id != old_id) {
      return Status(StatusCode::kFailedPrecondition,
                    entry.path().string() + ": no long page header with the system identifier " +
                        std::to_string(old_id) + " of pg_control");
    }
    unsigned char bytes[sizeof id];
    std::memcpy(bytes, &id, sizeof id);
    PGC_RETURN_IF_ERROR(WriteAt(entry.path(), kWalSysidOffset, bytes, sizeof bytes));
  }
  if (ec) return Status(StatusCode::kIoError, "listing " + data_dir + "/pg_wal: " + ec.message());

  std::memcpy(control->data(), &id, sizeof id);
  const uint32_t crc = Crc32c(control->data(), *crc_offset);
  std::memcpy(control->data() + *crc_offset, &crc, sizeof crc);
  return WriteAt(control_path, 0, control->data(), *crc_offset + sizeof crc);
}

}  // namespace pgcourier::testing
