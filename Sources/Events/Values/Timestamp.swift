import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 timestamps in UTC with microsecond precision, and PostgreSQL's `timestamptz` text output.
///
/// Hand-written rather than `ISO8601DateFormatter` because it runs once per event read and formatters
/// are slow and not `Sendable`.
public enum Timestamp {
    /// `2026-11-08T06:30:00.123456Z`, or without fraction when it is zero.
    public static func format(_ date: Date) -> String {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let seconds = floor(micros / 1_000_000)
        return format(seconds: Int(seconds), fraction: Int(micros - seconds * 1_000_000))
    }

    /// Microseconds since the epoch, rounded as `format` rounds them; nil beyond PostgreSQL's range
    /// (years 4713 BC to 294276 AD), where a time is refused anyway.
    public static func micros(_ date: Date) -> Int64? {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        guard micros.isFinite, abs(micros) < 9.2e18 else { return nil }
        return Int64(micros)
    }

    /// `format` for a time in microseconds since the epoch.
    public static func format(micros: Int64) -> String {
        let floorSeconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        return format(seconds: Int(floorSeconds), fraction: Int(micros - floorSeconds * 1_000_000))
    }

    /// Years 0000–9999 are written digit by digit (the civil-from-days algorithm); other years, which
    /// only tests and hostile input produce, go through `gmtime_r`.
    private static func format(seconds: Int, fraction: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else { return formatWithGmtime(seconds: seconds, fraction: fraction) }
        return String(unsafeUninitializedCapacity: 27) { out in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var v = value
                for k in stride(from: width - 1, through: 0, by: -1) { out[offset + k] = UInt8(0x30 + v % 10); v /= 10 }
            }
            put(year, 4, at: 0); out[4] = 0x2d; put(month, 2, at: 5); out[7] = 0x2d; put(day, 2, at: 8)
            out[10] = 0x54
            put(secondOfDay / 3_600, 2, at: 11); out[13] = 0x3a; put(secondOfDay / 60 % 60, 2, at: 14); out[16] = 0x3a
            put(secondOfDay % 60, 2, at: 17)
            var n = 19
            if fraction != 0 {
                out[19] = 0x2e
                put(fraction, 6, at: 20)
                n = 26
                while out[n - 1] == 0x30 { n -= 1 }
            }
            out[n] = 0x5a
            return n + 1
        }
    }

    /// `format` through the C library, for any year.
    static func formatWithGmtime(seconds: Int, fraction: Int) -> String {
        var seconds = seconds
        var tmValue = tm()
        gmtime_r(&seconds, &tmValue)
        var out = pad(Int(tmValue.tm_year) + 1900, 4) + "-" + pad(Int(tmValue.tm_mon) + 1, 2) + "-" + pad(Int(tmValue.tm_mday), 2)
        out += "T" + pad(Int(tmValue.tm_hour), 2) + ":" + pad(Int(tmValue.tm_min), 2) + ":" + pad(Int(tmValue.tm_sec), 2)
        if fraction != 0 {
            var digits = pad(fraction, 6)
            while digits.hasSuffix("0") { digits.removeLast() }
            out += "." + digits
        }
        return out + "Z"
    }

    /// `2026-11-08`, the UTC calendar date.
    public static func formatDate(_ date: Date) -> String {
        var seconds = Int(floor(date.timeIntervalSince1970))
        var tmValue = tm()
        gmtime_r(&seconds, &tmValue)
        return pad(Int(tmValue.tm_year) + 1900, 4) + "-" + pad(Int(tmValue.tm_mon) + 1, 2) + "-" + pad(Int(tmValue.tm_mday), 2)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// Parses RFC 3339 (`2026-11-08T06:30:00Z`, `...T06:30:00.5+07:00`) and PostgreSQL's ISO output
    /// (`2026-11-08 06:30:00.123456+00`). Returns nil for anything else, including impossible dates.
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    /// Parses from raw bytes; see `parse(_:)`.
    public static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Date? {
        func digits(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= b.count else { return nil }
            var v = 0
            for i in at..<(at + count) {
                let c = b[i]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard b.count >= 19,
              let year = digits(0, 4), b[4] == UInt8(ascii: "-"),
              let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
              let day = digits(8, 2),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: " ") || b[10] == UInt8(ascii: "t"),
              let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
              let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
              let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            if i == start { return nil }
        }
        var offset = 0
        guard i < b.count else { return nil }  // a zone is required: a time without one is ambiguous
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = digits(i + 1, 2) else { return nil }
            i += 3
            var om = 0
            if i < b.count, b[i] == UInt8(ascii: ":") {
                guard let m = digits(i + 1, 2) else { return nil }
                om = m
                i += 3
            } else if i + 2 <= b.count, let m = digits(i, 2) {
                om = m
                i += 2
            }
            guard oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        default:
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let secs = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
        return Date(timeIntervalSince1970: Double(secs) + fraction)
    }

    /// Parses a `YYYY-MM-DD` calendar date as midnight UTC.
    public static func parseDate(_ text: String) -> Date? {
        let u = Array(text.utf8)
        guard u.count == 10, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-") else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r { guard u[i] >= 48, u[i] <= 57 else { return nil }; v = v * 10 + Int(u[i] - 48) }
            return v
        }
        guard let y = num(0..<4), let m = num(5..<7), let d = num(8..<10),
              (1...12).contains(m), d >= 1, d <= daysIn(month: m, year: y) else { return nil }
        return Date(timeIntervalSince1970: Double(daysFromCivil(year: y, month: m, day: d) * 86_400))
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
