import Foundation

/// The top level of a JSON object, scanned without building it: its keys, and the values of a few keys
/// when they are plain strings. For request bodies and import lines, whose full decoding happens later.
/// `nil` when the text is not a well-formed top-level object, repeats a key, or uses escapes where this
/// scan needs plain text (keys, captured values): the caller then falls back to a full parser.
public struct JSONObjectScan: Sendable {
    public enum Captured: Sendable, Equatable { case text(String), other }
    public private(set) var keys: [String] = []
    /// For each requested key present: its string value, or `.other` when the value is not a string.
    public private(set) var captured: [String: Captured] = [:]

    public init?(scanning data: Data, capturing wanted: Set<String>) {
        let found: JSONObjectScan? = data.withUnsafeBytes { raw -> JSONObjectScan? in
            var scan = JSONObjectScan()
            return scan.run(raw.bindMemory(to: UInt8.self), wanted) ? scan : nil
        }
        guard let found else { return nil }
        self = found
    }

    private init() {}

    private mutating func run(_ b: UnsafeBufferPointer<UInt8>, _ wanted: Set<String>) -> Bool {
        var i = 0
        func skipSpace() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0a || b[i] == 0x0d { i += 1 } }
        /// A string without escapes at `i` (on its opening quote); nil when it has escapes.
        func plainString() -> String? {
            guard i < b.count, b[i] == 0x22 else { return nil }
            let start = i + 1
            var j = start
            while j < b.count, b[j] != 0x22 {
                if b[j] == 0x5c || b[j] < 0x20 { return nil }
                j += 1
            }
            guard j < b.count else { return nil }
            i = j + 1
            return String(validating: UnsafeBufferPointer(rebasing: b[start..<j]), as: UTF8.self)
        }
        /// Skips any value; strings may hold escapes here.
        func skipValue() -> Bool {
            var depth = 0
            repeat {
                skipSpace()
                guard i < b.count else { return false }
                switch b[i] {
                case 0x22:
                    i += 1
                    while i < b.count, b[i] != 0x22 { i += b[i] == 0x5c ? 2 : 1 }
                    guard i < b.count else { return false }
                    i += 1
                case 0x7b, 0x5b: depth += 1; i += 1
                case 0x7d, 0x5d: depth -= 1; i += 1; if depth < 0 { return false }
                case 0x2c, 0x3a: guard depth > 0 else { return false }; i += 1
                default:
                    let start = i
                    while i < b.count, !(b[i] == 0x2c || b[i] == 0x7d || b[i] == 0x5d || b[i] == 0x20 || b[i] == 0x0a
                                         || b[i] == 0x0d || b[i] == 0x09 || b[i] == 0x3a) { i += 1 }
                    if i == start { return false }
                }
            } while depth > 0
            return true
        }
        skipSpace()
        guard i < b.count, b[i] == 0x7b else { return false }
        i += 1
        skipSpace()
        if i < b.count, b[i] == 0x7d {
            i += 1
        } else {
            while true {
                skipSpace()
                guard let name = plainString() else { return false }
                skipSpace()
                guard i < b.count, b[i] == 0x3a else { return false }
                i += 1
                skipSpace()
                guard !keys.contains(name) else { return false }
                keys.append(name)
                if wanted.contains(name), i < b.count, b[i] == 0x22 {
                    guard let value = plainString() else { return false }
                    captured[name] = .text(value)
                } else {
                    guard skipValue() else { return false }
                    if wanted.contains(name) { captured[name] = .other }
                }
                skipSpace()
                guard i < b.count else { return false }
                if b[i] == 0x2c { i += 1; continue }
                guard b[i] == 0x7d else { return false }
                i += 1
                break
            }
        }
        skipSpace()
        return i == b.count
    }
}
