import Foundation

/// gzip (RFC 1952) of a DEFLATE stream (RFC 1951), written here because the design allows no library but libpq.
///
/// One block with the fixed Huffman codes of RFC 1951 §3.2.6 and LZ77 matches found through hash chains over a
/// 32 KiB window (lazy by one byte, like zlib's default): JSON and CSV, which repeat field names and values, come
/// out at a fifth to a tenth of their size. Checked by gzip(1) and Python's zlib in the tests, and in coordd only
/// for bodies a client asked to receive compressed.
public enum Gzip {
    /// The gzip member holding `data`.
    public static func compress(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]  // deflate, no name, no mtime, unknown OS
        out.reserveCapacity(data.count / 3 + 32)
        Deflate.compress(data, into: &out)
        let crc = CRC32.checksum(data)
        let size = UInt32(truncatingIfNeeded: data.count)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: size >> UInt32(shift))) }
        return out
    }

    /// Whether an `Accept-Encoding` value accepts gzip (`gzip`, `x-gzip` or `*`, with a q-value above 0).
    public static func accepted(by acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var gzip: Double?, star: Double?
        for part in acceptEncoding.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = pieces.first else { continue }
            var q = 1.0
            for p in pieces.dropFirst() where p.hasPrefix("q=") { q = Double(p.dropFirst(2)) ?? 0 }
            if coding == "gzip" || coding == "x-gzip" { gzip = q } else if coding == "*" { star = q }
        }
        return (gzip ?? star ?? 0) > 0
    }
}

/// CRC-32 (IEEE 802.3, reflected), as gzip's trailer has it.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        data.withUnsafeBufferPointer { p in
            for b in p { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}

enum Deflate {
    static let windowSize = 1 << 15
    static let minMatch = 3
    static let maxMatch = 258
    static let hashBits = 15
    /// How many earlier positions with the same hash are tried: more finds longer matches, slower.
    static let maxChain = 48

    /// Length codes 257...285: (base length, extra bits).
    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    /// Distance codes 0...29: (base distance, extra bits).
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                                      2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    /// The length code index (0...28) of each match length 3...258.
    static let lengthCode: [UInt8] = {
        var table = [UInt8](repeating: 0, count: maxMatch + 1)
        for code in 0..<lengthBase.count {
            let end = code + 1 < lengthBase.count ? lengthBase[code + 1] : maxMatch + 1
            for length in lengthBase[code]..<min(end, maxMatch + 1) { table[length] = UInt8(code) }
        }
        table[maxMatch] = 28
        return table
    }()

    static func distanceCode(_ distance: Int) -> Int {
        var lo = 0, hi = distanceBase.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if distanceBase[mid] <= distance { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    struct BitWriter {
        var out: [UInt8]
        var buffer: UInt64 = 0
        var count = 0

        /// `bits` low bits of `value`, least significant first (how DEFLATE packs everything but Huffman codes).
        mutating func write(_ value: Int, _ bits: Int) {
            buffer |= UInt64(value) << UInt64(count)
            count += bits
            while count >= 8 {
                out.append(UInt8(truncatingIfNeeded: buffer))
                buffer >>= 8
                count -= 8
            }
        }

        /// A Huffman code, most significant bit first.
        mutating func code(_ code: Int, _ bits: Int) {
            var reversed = 0
            var c = code
            for _ in 0..<bits { reversed = (reversed << 1) | (c & 1); c >>= 1 }
            write(reversed, bits)
        }

        mutating func flush() {
            if count > 0 { out.append(UInt8(truncatingIfNeeded: buffer)) }
            buffer = 0
            count = 0
        }
    }

    /// A literal/length symbol 0...287 in the fixed code.
    static func symbol(_ s: Int, _ w: inout BitWriter) {
        switch s {
        case 0...143: w.code(0x30 + s, 8)
        case 144...255: w.code(0x190 + s - 144, 9)
        case 256...279: w.code(s - 256, 7)
        default: w.code(0xC0 + s - 280, 8)
        }
    }

    static func match(_ length: Int, _ distance: Int, _ w: inout BitWriter) {
        let lc = Int(lengthCode[length])
        symbol(257 + lc, &w)
        if lengthExtra[lc] > 0 { w.write(length - lengthBase[lc], lengthExtra[lc]) }
        let dc = distanceCode(distance)
        w.code(dc, 5)
        if distanceExtra[dc] > 0 { w.write(distance - distanceBase[dc], distanceExtra[dc]) }
    }

    static func compress(_ data: [UInt8], into out: inout [UInt8]) {
        var w = BitWriter(out: out)
        w.write(1, 1)  // BFINAL: the only block
        w.write(1, 2)  // BTYPE 01: fixed Huffman codes
        let n = data.count
        data.withUnsafeBufferPointer { d in
            var head = [Int32](repeating: -1, count: 1 << hashBits)
            var prev = [Int32](repeating: -1, count: windowSize)
            func hash(_ i: Int) -> Int {
                ((Int(d[i]) << 10) ^ (Int(d[i + 1]) << 5) ^ Int(d[i + 2])) & ((1 << hashBits) - 1)
            }
            func insert(_ i: Int) {
                guard i + minMatch <= n else { return }
                let h = hash(i)
                prev[i & (windowSize - 1)] = head[h]
                head[h] = Int32(i)
            }
            func longest(_ i: Int) -> (length: Int, distance: Int) {
                guard i + minMatch <= n else { return (0, 0) }
                var best = 0, bestDistance = 0
                var candidate = Int(head[hash(i)])
                var chain = maxChain
                let limit = min(maxMatch, n - i)
                while candidate >= 0 && i - candidate <= windowSize && chain > 0 {
                    if candidate < i && d[candidate + best] == d[i + best] {
                        var length = 0
                        while length < limit && d[candidate + length] == d[i + length] { length += 1 }
                        if length > best {
                            best = length
                            bestDistance = i - candidate
                            if length == limit { break }
                        }
                    }
                    let next = Int(prev[candidate & (windowSize - 1)])
                    if next >= candidate { break }  // a slot reused by a later position: the chain ends here
                    candidate = next
                    chain -= 1
                }
                return best >= minMatch ? (best, bestDistance) : (0, 0)
            }
            var i = 0
            while i < n {
                let here = longest(i)
                if here.length >= minMatch {
                    // Lazy by one: a longer match one byte on is worth a literal now.
                    insert(i)
                    let next = i + 1 < n ? longest(i + 1) : (length: 0, distance: 0)
                    if next.length > here.length {
                        symbol(Int(d[i]), &w)
                        i += 1
                        continue
                    }
                    match(here.length, here.distance, &w)
                    for k in 1..<here.length { insert(i + k) }
                    i += here.length
                } else {
                    insert(i)
                    symbol(Int(d[i]), &w)
                    i += 1
                }
            }
        }
        symbol(256, &w)  // end of block
        w.flush()
        out = w.out
    }
}
