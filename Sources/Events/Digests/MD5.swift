import Foundation

/// MD5 (RFC 1321), for identifiers only: idempotency-derived event ids and request digests, which must
/// equal what PostgreSQL's `md5()` gives for the same text (earlier versions computed them there).
/// Not used for anything that needs collision resistance; the event log's chain is SHA-256 (`SHA256`).
public enum MD5 {
    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    private static let constants: [UInt32] = (0..<64).map { i in
        UInt32(truncatingIfNeeded: Int64((abs(sin(Double(i + 1))) * 4_294_967_296.0).rounded(.down)))
    }

    /// The 16-byte digest of `bytes`.
    public static func digest(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let state = bytes.withContiguousStorageIfAvailable { hash($0) } ?? Array(bytes).withUnsafeBufferPointer { hash($0) }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for v in [state.0, state.1, state.2, state.3] { for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(k)))) } }
        return out
    }

    /// MD5 over `m`.
    static func hash(_ m: UnsafeBufferPointer<UInt8>) -> (UInt32, UInt32, UInt32, UInt32) {
        var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476)
        MessageBlocks.forEach(m, bigEndianLength: false) { block($0, &state) }
        return state
    }

    private static func block(_ m: UnsafePointer<UInt8>, _ state: inout (UInt32, UInt32, UInt32, UInt32)) {
        shifts.withUnsafeBufferPointer { s in
            constants.withUnsafeBufferPointer { k in
                withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 16) { words in
                    for j in 0..<16 {
                        let o = j * 4
                        words[j] = UInt32(m[o]) | UInt32(m[o + 1]) << 8 | UInt32(m[o + 2]) << 16 | UInt32(m[o + 3]) << 24
                    }
                    var (a, b, c, d) = state
                    for i in 0..<64 {
                        var f: UInt32
                        let g: Int
                        switch i >> 4 {
                        case 0: f = (b & c) | (~b & d); g = i
                        case 1: f = (d & b) | (~d & c); g = (5 &* i &+ 1) & 15
                        case 2: f = b ^ c ^ d; g = (3 &* i &+ 5) & 15
                        default: f = c ^ (b | ~d); g = (7 &* i) & 15
                        }
                        f = f &+ a &+ k[i] &+ words[g]
                        a = d; d = c; c = b
                        b = b &+ (f << s[i] | f >> (32 &- s[i]))
                    }
                    state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
                }
            }
        }
    }

    /// Lower-case hex of the digest of `text`'s UTF-8 bytes, as PostgreSQL's `md5(text)` prints it.
    public static func hex(_ text: String) -> String {
        Hex.string(digest(text.utf8))
    }

    /// The digest of `text` read as a UUID, as PostgreSQL's `md5(text)::uuid` does.
    public static func uuid(_ text: String) -> UUID {
        let d = digest(text.utf8)
        return UUID(uuid: (d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]))
    }
}
