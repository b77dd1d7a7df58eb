import Foundation

extension UUID {
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
