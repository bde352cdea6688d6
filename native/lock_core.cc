// The record protocol, on top of each platform's positional I/O
// (lock_core.h): how a record is written so that no reader sees a spliced
// one, and how it is read until it holds still.
#include "lock_core.h"

namespace loop_lock {
namespace {

// Reads go through a buffer of this size: a record that fits (they are a
// few hundred bytes) costs one read.
constexpr size_t kReadChunk = 4096;

// How many times a record that changes, or is being written, is read again
// before it counts as unreadable for now: 64 reads take tens of
// microseconds, longer than a write does unless its writer is preempted.
constexpr int kMaxRereads = 64;

// The first byte of a record while it is being written (and of one that was
// rewritten under every read): no JSON text starts with it.
constexpr char kWriting = '\0';

Status WriteAll(FileHandle file, const char* data, size_t length, size_t offset) {
  size_t written = 0;
  while (written < length) {
    size_t n = 0;
    const Status status =
        WriteAt(file, data + written, length - written, nullptr, 0, offset + written, &n);
    if (!status.ok()) return status;
    written += n;
  }
  return Status{};
}

// Reads from offset 0 until end of file or limit bytes. A short read of a
// regular file means end of file, so a record that fits in the buffer
// costs one read.
Status ReadOnce(FileHandle file, size_t limit, std::string* out) {
  char chunk[kReadChunk];
  out->clear();
  while (out->size() < limit) {
    const size_t want = limit - out->size() < sizeof chunk
                            ? limit - out->size()
                            : sizeof chunk;
    size_t n = 0;
    const Status status = ReadAt(file, chunk, want, out->size(), &n);
    if (!status.ok()) return status;
    out->append(chunk, n);
    if (n < want) break;
  }
  return Status{};
}

}  // namespace

Status WriteRecord(FileHandle file, const char* data, size_t length, long long size_before) {
  if (length == 0) return Truncate(file, 0);
  // Readers take no lock, and the kernel copies a write into the file from
  // the front while they read: a reader can meet the new record's head on
  // the old one's tail, and a writer stopped there (killed between two
  // pages, or its CPU taken away mid-copy) leaves that state in place for
  // as long as it likes. So the record goes in with a NUL first byte,
  // which no JSON text starts with, and gets its real first byte last,
  // after the rest is in place and the file cut to length: every state
  // before that is unreadable, none is a record nobody wrote.
  size_t done = 0;
  Status status = WriteAt(file, &kWriting, 1, data + 1, length - 1, 0, &done);
  if (!status.ok()) return status;
  status = WriteAll(file, data + done, length - done, done);
  if (status.ok() && (size_before < 0 || static_cast<size_t>(size_before) > length)) {
    status = Truncate(file, length);
  }
  if (status.ok()) status = WriteAll(file, data, 1, 0);
  // A write that failed halfway (ENOSPC, say) leaves part of a record: an
  // empty file reads as "no metadata yet" instead. If even that fails, the
  // write's error is still the one to report.
  if (!status.ok()) Truncate(file, 0);
  return status;
}

Status ReadRecord(FileHandle file, size_t max_bytes, std::string* out) {
  Status status = ReadOnce(file, max_bytes + 1, out);
  // Too large is the answer whatever the bytes say, and settles nothing
  // by being read again: a large file that starts with NUL (a sparse one,
  // say) would otherwise be reread in full, up to 64 times.
  if (!status.ok() || out->size() > max_bytes) return status;
  // Reads do not exclude writes: a reader preempted in the middle of its
  // copy, or between two reads of a long record, can pair the head of one
  // record with the tail of the next holder's, which may parse as a record
  // nobody wrote. Keep a read only when the next one agrees with it. A
  // record that starts with NUL is being written (see WriteRecord), by a
  // writer a few microseconds from done (or dead): read it again too.
  std::string again;
  for (int reads = 0; reads < kMaxRereads; ++reads) {
    status = ReadOnce(file, max_bytes + 1, &again);
    if (!status.ok()) return status;
    if (again == *out && (out->empty() || out->front() != kWriting)) {
      return Status{};
    }
    out->swap(again);
    if (out->size() > max_bytes) return Status{};
  }
  // Rewritten under every read: report it the way a write in progress
  // looks (see WriteRecord), as unreadable for now.
  out->assign(1, kWriting);
  return Status{};
}

bool IsValidUtf8(const char* bytes, size_t length) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes);
  size_t i = 0;
  while (i < length) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;
    unsigned int code_point;
    unsigned int min;
    if ((c & 0xE0) == 0xC0) {
      extra = 1, code_point = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, code_point = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, code_point = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (length - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (s[i + k] & 0x3F);
    }
    if (code_point < min || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace loop_lock
