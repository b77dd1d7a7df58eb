import Foundation

extension UUID {
    /// A random (version 4) UUID from the system generator (`getrandom`, two calls). Foundation's `UUID()`
    /// on Linux opens, reads and closes `/dev/urandom` for each one, a few percent of coordd's CPU per command.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        var halves = (generator.next() as UInt64, generator.next() as UInt64)
        return withUnsafeMutableBytes(of: &halves) { raw in
            raw[6] = (raw[6] & 0x0f) | 0x40  // version 4
            raw[8] = (raw[8] & 0x3f) | 0x80  // RFC 4122 variant
            return UUID(uuid: raw.load(as: uuid_t.self))
        }
    }

    /// Parses the canonical `8-4-4-4-12` hex form (either case), as PostgreSQL prints a uuid; nil for anything else.
    /// Byte by byte: Foundation's `UUID(uuidString:)` goes through `sscanf` on Linux, which was 5% of a rebuild's
    /// client CPU (every event read carries its id).
    public static func parse(bytes: UnsafeBufferPointer<UInt8>) -> UUID? {
        guard bytes.count == 36 else { return nil }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &value) { out -> Bool in
            var i = 0
            for k in 0..<16 {
                if k == 4 || k == 6 || k == 8 || k == 10 {
                    guard bytes[i] == UInt8(ascii: "-") else { return false }
                    i += 1
                }
                guard let high = Hex.nibble(bytes[i]), let low = Hex.nibble(bytes[i + 1]) else { return false }
                out[k] = high << 4 | low
                i += 2
            }
            return true
        }
        return ok ? UUID(uuid: value) : nil
    }

    /// `parse(bytes:)` for a string.
    public static func parse(_ text: String) -> UUID? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    /// `8-4-4-4-12` lower-case hex, as PostgreSQL prints a uuid. Built byte by byte: `uuidString` goes
    /// through `sprintf` on Linux, which showed up in import profiles.
    public var lowercasedString: String {
        String(unsafeUninitializedCapacity: 36) { appendLowercased(to: $0) }
    }

    /// Writes `lowercasedString`'s 36 bytes at the start of `out`; returns 36.
    @discardableResult
    public func appendLowercased(to out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        withUnsafeBytes(of: uuid) { raw in
            var o = 0
            for (i, byte) in raw.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = UInt8(ascii: "-"); o += 1 }
                out[o] = Hex.digits[Int(byte >> 4)]
                out[o + 1] = Hex.digits[Int(byte & 0x0f)]
                o += 2
            }
            return o
        }
    }
}
