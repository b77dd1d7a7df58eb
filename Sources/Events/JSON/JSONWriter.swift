import Foundation

/// Small JSON helpers shared by the store, the domain and the executables.
public enum JSONWriter {
    /// A JSON string literal for `s`, escaping quotes, backslashes and control characters.
    public static func quote(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count + 2)
        appendQuoted(s, to: &out)
        return out
    }

    /// `quote(s)` appended to `out`, without building the quoted string on its own.
    public static func appendQuoted(_ s: String, to out: inout String) {
        // Most strings (codes, ids, keys) need no escaping: one scan of the bytes, three appends.
        if !s.utf8.contains(where: needsEscape) {
            out += "\""
            out += s
            out += "\""
            return
        }
        var bytes: [UInt8] = []
        appendQuoted(s.utf8, to: &bytes)
        out += String(decoding: bytes, as: UTF8.self)
    }

    /// `quote` for UTF-8 bytes. It is also PostgreSQL's `escape_json`, which prints jsonb strings (`JSONBText`).
    public static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendQuoted($0, to: &out) }
    }

    public static func appendQuoted(_ s: some Collection<UInt8>, to out: inout [UInt8]) {
        out.append(0x22)
        if !s.contains(where: needsEscape) {
            out.append(contentsOf: s)
            out.append(0x22)
            return
        }
        for b in s {
            switch b {
            case 0x08: out.append(0x5c); out.append(0x62)
            case 0x0c: out.append(0x5c); out.append(0x66)
            case 0x0a: out.append(0x5c); out.append(0x6e)
            case 0x0d: out.append(0x5c); out.append(0x72)
            case 0x09: out.append(0x5c); out.append(0x74)
            case 0x22: out.append(0x5c); out.append(0x22)
            case 0x5c: out.append(0x5c); out.append(0x5c)
            case ..<0x20: out.append(contentsOf: [0x5c, 0x75, 0x30, 0x30, Hex.digits[Int(b >> 4)], Hex.digits[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(0x22)
    }

    private static func needsEscape(_ b: UInt8) -> Bool { b < 0x20 || b == 0x22 || b == 0x5c }

    /// An encoder with snake_case keys, RFC 3339 UTC dates and sorted keys (stable output).
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        return encoder
    }

    /// A decoder matching `makeEncoder`: snake_case keys, RFC 3339 dates (with or without fraction).
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an RFC 3339 time")
            }
            return date
        }
        return decoder
    }

    /// The text `makeEncoder()` would produce, by the faster `CanonicalJSON`.
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        try CanonicalJSON.encode(value)
    }

    /// Why `text` cannot be stored as a jsonb object, or nil when it can. PostgreSQL's jsonb refuses
    /// `\u0000`, which JSON itself allows, so that is checked here too.
    public static func problemWithObject(_ text: String) -> String? {
        let data = Data(text.utf8)
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            return "is not valid JSON"
        }
        guard object is [String: Any] else { return "must be a JSON object" }
        if containsNULEscape(text) { return "contains a NUL character" }
        return nil
    }

    /// True when `text` holds the escape `\u0000` (PostgreSQL's jsonb refuses it). Counts the backslashes
    /// before it, so an escaped backslash followed by `u0000` is not taken for one.
    static func containsNULEscape(_ text: String) -> Bool {
        var escaped = false
        var pending = 0  // characters of "u0000" matched after an escaping backslash
        let target: [UInt8] = [117, 48, 48, 48, 48]
        for b in text.utf8 {
            if pending > 0 {
                if b == target[5 - pending] { pending -= 1; if pending == 0 { return true }; continue }
                pending = 0
            }
            if escaped {
                escaped = false
                if b == 117 { pending = 4 }
            } else if b == 92 {
                escaped = true
            }
        }
        return false
    }

    /// The cheap part of `problemWithObject`, without parsing: braces around the text, no NUL escape. For
    /// text the caller produced itself and PostgreSQL parses anyway (staged appends).
    public static func problemWithObjectShape(_ text: String) -> String? {
        let bytes = text.utf8
        let first = bytes.first { $0 != 0x20 && $0 != 0x0a && $0 != 0x0d && $0 != 0x09 }
        let last = bytes.last { $0 != 0x20 && $0 != 0x0a && $0 != 0x0d && $0 != 0x09 }
        guard first == UInt8(ascii: "{"), last == UInt8(ascii: "}") else { return "must be a JSON object" }
        if containsNULEscape(text) { return "contains a NUL character" }
        return nil
    }
}
