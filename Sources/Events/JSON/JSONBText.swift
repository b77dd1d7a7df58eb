/// The text PostgreSQL prints for a `jsonb` value (`data::text`), computed in Swift from JSON text, so a bulk
/// import can compute the event hash chain (which hashes `data::text` and `metadata::text`) before it COPYs.
///
/// jsonb's output: object keys ordered by byte length, then bytewise; a repeated key keeps its last value;
/// `", "` between items and `": "` after keys; strings escaped as PostgreSQL's `escape_json` does, which is
/// `JSONWriter`'s escaping too (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`,
/// everything else verbatim); numbers as `numeric` prints them.
///
/// It answers nil for anything it is not certain about, and the caller then lets PostgreSQL compute the
/// chain: repeated keys, numbers with an exponent or a negative zero (numeric rewrites those), `\u0000`
/// (jsonb refuses it), and text that is not JSON. A test compares it with PostgreSQL on a large corpus.
public enum JSONBText {
    /// jsonb's text for `json`, appended to `out`; false (with `out` unspecified) when unsure.
    public static func append(_ json: String, to out: inout [UInt8]) -> Bool {
        var json = json
        return json.withUTF8 { bytes in
            var r = Renderer(bytes: bytes)
            guard r.value(into: &out, depth: 0) else { return false }
            r.skipSpace()
            return r.i == bytes.count
        }
    }

    /// jsonb's text for `json`, or nil when unsure.
    public static func render(_ json: String) -> String? {
        var out: [UInt8] = []
        guard append(json, to: &out) else { return nil }
        return String(decoding: out, as: UTF8.self)
    }

    private struct Renderer {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
        }

        mutating func value(into out: inout [UInt8], depth: Int) -> Bool {
            guard depth < 512 else { return false }
            skipSpace()
            guard i < bytes.count else { return false }
            switch bytes[i] {
            case 0x7b: return object(into: &out, depth: depth)
            case 0x5b:
                i += 1
                out.append(0x5b)
                skipSpace()
                if i < bytes.count, bytes[i] == 0x5d { i += 1; out.append(0x5d); return true }
                var first = true
                while true {
                    if !first { out.append(0x2c); out.append(0x20) }
                    first = false
                    guard value(into: &out, depth: depth + 1) else { return false }
                    skipSpace()
                    guard i < bytes.count else { return false }
                    if bytes[i] == 0x2c { i += 1; continue }
                    guard bytes[i] == 0x5d else { return false }
                    i += 1
                    out.append(0x5d)
                    return true
                }
            case 0x22: return string(into: &out)
            case 0x74: return literal("true", into: &out)
            case 0x66: return literal("false", into: &out)
            case 0x6e: return literal("null", into: &out)
            default: return number(into: &out)
            }
        }

        /// Members are rendered in place, then reordered as jsonb orders keys when they are not in that order
        /// already. A key with an escape is left to PostgreSQL (nil).
        mutating func object(into out: inout [UInt8], depth: Int) -> Bool {
            i += 1
            skipSpace()
            out.append(0x7b)
            if i < bytes.count, bytes[i] == 0x7d { i += 1; out.append(0x7d); return true }
            var members: [(key: Range<Int>, text: Range<Int>)] = []
            var ordered = true
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == 0x22 else { return false }
                var j = i + 1
                while j < bytes.count, bytes[j] != 0x22, bytes[j] != 0x5c, bytes[j] >= 0x20 { j += 1 }
                guard j < bytes.count, bytes[j] == 0x22,
                      String(validating: UnsafeBufferPointer(rebasing: bytes[(i + 1)..<j]), as: UTF8.self) != nil else { return false }
                if !members.isEmpty { out.append(0x2c); out.append(0x20) }
                let memberStart = out.count
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i...j]))
                let key = (memberStart + 1)..<(out.count - 1)
                i = j + 1
                skipSpace()
                guard i < bytes.count, bytes[i] == 0x3a else { return false }
                i += 1
                out.append(0x3a)
                out.append(0x20)
                guard value(into: &out, depth: depth + 1) else { return false }
                if let last = members.last, !Self.precedes(out[last.key], out[key]) { ordered = false }
                members.append((key, memberStart..<out.count))
                skipSpace()
                guard i < bytes.count else { return false }
                if bytes[i] == 0x2c { i += 1; continue }
                guard bytes[i] == 0x7d else { return false }
                i += 1
                break
            }
            if !ordered {
                // Only this object's members are copied: `out` may hold much more before them.
                let firstStart = members[0].text.lowerBound
                let rendered = Array(out[firstStart...])
                func slice(_ r: Range<Int>) -> ArraySlice<UInt8> { rendered[(r.lowerBound - firstStart)..<(r.upperBound - firstStart)] }
                members.sort { Self.precedes(slice($0.key), slice($1.key)) }
                for n in members.indices.dropFirst() where slice(members[n].key).elementsEqual(slice(members[n - 1].key)) { return false }
                out.removeSubrange(firstStart...)
                for (n, m) in members.enumerated() {
                    if n > 0 { out.append(0x2c); out.append(0x20) }
                    out.append(contentsOf: slice(m.text))
                }
            }
            out.append(0x7d)
            return true
        }

        /// jsonb's key order: shorter first, then bytewise. Equal keys do not precede each other.
        static func precedes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
            a.count != b.count ? a.count < b.count : a.lexicographicallyPrecedes(b)
        }

        mutating func literal(_ word: StaticString, into out: inout [UInt8]) -> Bool {
            let n = word.utf8CodeUnitCount
            guard i + n <= bytes.count else { return false }
            for k in 0..<n where bytes[i + k] != word.utf8Start[k] { return false }
            out.append(contentsOf: UnsafeBufferPointer(start: word.utf8Start, count: n))
            i += n
            return true
        }

        /// A string, re-escaped as jsonb prints it. Without backslashes the bytes are copied: JSON already
        /// requires `"`, `\` and control characters to be escaped, and jsonb prints the rest verbatim.
        mutating func string(into out: inout [UInt8]) -> Bool {
            guard i < bytes.count, bytes[i] == 0x22 else { return false }
            var j = i + 1
            while j < bytes.count, bytes[j] != 0x22, bytes[j] != 0x5c, bytes[j] >= 0x20 { j += 1 }
            if j < bytes.count, bytes[j] == 0x22 {
                guard String(validating: UnsafeBufferPointer(rebasing: bytes[(i + 1)..<j]), as: UTF8.self) != nil else { return false }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i...j]))
                i = j + 1
                return true
            }
            var decoded: [UInt8] = []
            guard decodedString(into: &decoded) else { return false }
            JSONWriter.appendQuoted(decoded, to: &out)
            return true
        }

        /// A string's bytes with its escapes decoded; false for bad JSON, invalid UTF-8 or `\u0000`.
        mutating func decodedString(into out: inout [UInt8]) -> Bool {
            guard i < bytes.count, bytes[i] == 0x22 else { return false }
            i += 1
            let start = out.count
            guard JSONValue.decodeString(bytes, &i, into: &out), !out[start...].contains(0) else { return false }
            return String(validating: out[start...], as: UTF8.self) != nil
        }

        /// Only -?(0|[1-9][0-9]*)(.[0-9]+)? without negative zero: numeric prints those as written.
        mutating func number(into out: inout [UInt8]) -> Bool {
            let start = i
            var nonzero = false
            func digits() -> Int {
                let s = i
                while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { nonzero = nonzero || bytes[i] != 0x30; i += 1 }
                return i - s
            }
            let negative = i < bytes.count && bytes[i] == 0x2d
            if negative { i += 1 }
            guard i < bytes.count else { return false }
            if bytes[i] == 0x30 { i += 1 } else if digits() == 0 { return false }
            if i < bytes.count, bytes[i] == 0x2e { i += 1; guard digits() > 0 else { return false } }
            if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 { return false }
            if negative && !nonzero { return false }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
            return true
        }
    }
}
