// The metadata record a holder writes: laid out as the Rust reference's
// serde_json::to_string_pretty writes its LockMetadata, with the time as
// JavaScript's Date#toISOString writes it, which both readers (chrono and
// lib/metadata.ts) take. Built here, next to the write, so that a waiter
// woken by the event loop stamps and writes its record without a trip
// through JavaScript.
#ifndef LOOP_LOCK_RECORD_H_
#define LOOP_LOCK_RECORD_H_

#include <cstdint>
#include <string>

namespace loop_lock {

// Milliseconds since the Unix epoch, from the system clock, as Date.now().
int64_t NowMs();

// Appends `ms` as Date#toISOString writes it: YYYY-MM-DDTHH:MM:SS.mmmZ, or
// with a sign and six digits for years outside 0 to 9999.
void AppendTimestamp(int64_t ms, std::string* out);

// {"pid", "started", "prompt"} with a two-space indent; prompt_json is the
// prompt already JSON-encoded (lib/metadata.ts encodePrompt).
std::string EncodeRecord(uint32_t pid, int64_t started_ms, const std::string& prompt_json);

}  // namespace loop_lock

#endif  // LOOP_LOCK_RECORD_H_
