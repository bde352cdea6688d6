#include "record.h"

#include <chrono>

namespace loop_lock {
namespace {

constexpr int64_t kMsPerDay = 86400000;

// Floor division: times before 1970 still fall on the day they belong to.
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

void AppendDigits(int64_t value, int width, std::string* out) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  for (int pad = width - n; pad > 0; --pad) out->push_back('0');
  while (n > 0) out->push_back(digits[--n]);
}

}  // namespace

int64_t NowMs() {
  // The system clock is CLOCK_REALTIME on POSIX and the system time on
  // Windows, as Date.now() reads them.
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void AppendTimestamp(int64_t ms, std::string* out) {
  const int64_t days = FloorDiv(ms, kMsPerDay);
  const int64_t in_day = (ms % kMsPerDay + kMsPerDay) % kMsPerDay;
  // Civil date from days since 1970-01-01 in the proleptic Gregorian
  // calendar (H. Hinnant's civil_from_days): eras of 400 years, years
  // starting on March 1 so the leap day comes last.
  const int64_t z = days + 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t day_of_era = z - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t shifted_month = (5 * day_of_year + 2) / 153;
  const int64_t day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
  const int64_t month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2);

  if (year >= 0 && year <= 9999) {
    AppendDigits(year, 4, out);
  } else {
    out->push_back(year < 0 ? '-' : '+');
    AppendDigits(year < 0 ? -year : year, 6, out);
  }
  out->push_back('-');
  AppendDigits(month, 2, out);
  out->push_back('-');
  AppendDigits(day, 2, out);
  out->push_back('T');
  AppendDigits(in_day / 3600000, 2, out);
  out->push_back(':');
  AppendDigits(in_day / 60000 % 60, 2, out);
  out->push_back(':');
  AppendDigits(in_day / 1000 % 60, 2, out);
  out->push_back('.');
  AppendDigits(in_day % 1000, 3, out);
  out->push_back('Z');
}

std::string EncodeRecord(uint32_t pid, int64_t started_ms, const std::string& prompt_json) {
  static constexpr char kPid[] = "{\n  \"pid\": ";
  static constexpr char kStarted[] = ",\n  \"started\": \"";
  static constexpr char kPrompt[] = "\",\n  \"prompt\": ";
  static constexpr char kEnd[] = "\n}";
  std::string record;
  record.reserve(sizeof kPid + sizeof kStarted + sizeof kPrompt + sizeof kEnd + 48 +
                 prompt_json.size());
  record.append(kPid);
  AppendDigits(pid, 1, &record);
  record.append(kStarted);
  AppendTimestamp(started_ms, &record);
  record.append(kPrompt);
  record.append(prompt_json);
  record.append(kEnd);
  return record;
}

}  // namespace loop_lock
