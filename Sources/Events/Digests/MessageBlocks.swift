/// The 64-byte blocks MD5 and SHA-256 consume: whole blocks straight from the message, then the padded tail
/// (0x80, zeros, the message length in bits in the last 8 bytes) from a small buffer.
enum MessageBlocks {
    static func forEach(_ m: UnsafeBufferPointer<UInt8>, bigEndianLength: Bool, _ body: (UnsafePointer<UInt8>) -> Void) {
        let whole = m.count / 64 * 64
        var offset = 0
        while offset < whole {
            body(m.baseAddress! + offset)
            offset += 64
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { tail in
            let rest = m.count - whole
            for j in 0..<rest { tail[j] = m[whole + j] }
            tail[rest] = 0x80
            let length = rest < 56 ? 64 : 128
            for j in (rest + 1)..<length { tail[j] = 0 }
            let bits = UInt64(m.count) &* 8
            for j in 0..<8 {
                tail[bigEndianLength ? length - 1 - j : length - 8 + j] = UInt8(truncatingIfNeeded: bits >> (8 * UInt64(j)))
            }
            body(UnsafePointer(tail.baseAddress!))
            if length == 128 { body(UnsafePointer(tail.baseAddress! + 64)) }
        }
    }
}
