// UTC times as records hold them (Date#toISOString's form), by the
// proleptic Gregorian calendar's arithmetic (H. Hinnant's civil_from_days
// and days_from_civil, as native/record.cc writes them): a third of what
// Date's own methods cost on the paths every status() and contended
// tryAcquire() take.

const MS_PER_DAY = 86_400_000;

/** Days from 1970-01-01 to a date (month 1 to 12); years 0 to 99 are those years, not 1900 to 1999 as Date.UTC has it. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function twoDigits(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** `new Date(ms).toISOString()`, for any time a Date holds. */
export function isoTime(ms: number): string {
  const days = Math.floor(ms / MS_PER_DAY);
  const inDay = ms - days * MS_PER_DAY;
  // Years start on March 1 here, so that the leap day comes last.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  // Beyond 4 digits Date writes a sign and six: rare enough to leave to it.
  if (year < 0 || year > 9999) return new Date(ms).toISOString();
  const millis = inDay % 1000;
  return (
    `${String(year).padStart(4, '0')}-${twoDigits(month)}-${twoDigits(day)}T${twoDigits(Math.floor(inDay / 3_600_000))}:` +
    `${twoDigits(Math.floor(inDay / 60_000) % 60)}:${twoDigits(Math.floor(inDay / 1000) % 60)}.` +
    `${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`
  );
}
